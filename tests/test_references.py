"""Every research-note section the code cites is in docs/reference, under the cited number."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dsa110", "loaders", "resolvers", "schema", "compat_rest", "server", "bench")
NOTES = ("legacy-pipeline-facts", "graphql-servers", "transient-pipelines")
CITATION = re.compile(
    r"(?P<note>" + "|".join(NOTES) + r")(?:\.md)?\s+(?:§|section\s+)"
    r"(?P<first>\d+(?:\.\d+)*)(?:-(?P<last>\d+(?:\.\d+)*))?"
)
TITLED = re.compile(r'dashboard_backend_api "(?P<title>[^"]+)"')


def _sources() -> dict[Path, str]:
    return {
        path: path.read_text()
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations/versions" not in str(path)
    }


def _headings(note: str) -> set[str]:
    text = (ROOT / "docs" / "reference" / f"{note}.md").read_text()
    numbered = re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", text, re.MULTILINE)
    titled = re.findall(r"^#{2,4} (.+)$", text, re.MULTILINE)
    return {*numbered, *titled}


def _present(number: str, headings: set[str]) -> bool:
    """``3.3`` needs heading 3.3; an item such as ``9.19`` of a list is found under heading 9."""
    parts = number.split(".")
    return any(".".join(parts[:n]) in headings for n in range(len(parts), 0, -1))


def test_every_cited_section_is_in_docs_reference() -> None:
    headings = {note: _headings(note) for note in (*NOTES, "dashboard_backend_api")}
    missing = []
    cited = 0
    for path, text in _sources().items():
        for m in CITATION.finditer(text):
            cited += 1
            for number in filter(None, (m["first"], m["last"])):
                if not _present(number, headings[m["note"]]):
                    missing.append(f"{path.relative_to(ROOT)}: {m['note']} §{number}")
        for m in TITLED.finditer(text):
            cited += 1
            if m["title"] not in headings["dashboard_backend_api"]:
                missing.append(f"{path.relative_to(ROOT)}: dashboard_backend_api {m['title']!r}")
    assert cited > 20
    assert not missing, missing


def test_no_code_cites_a_document_outside_the_repository() -> None:
    stray = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path, text in _sources().items()
        for m in re.finditer(r"(?<!docs/)\breference/[\w-]+\.md", text)
    ]
    assert not stray, stray
