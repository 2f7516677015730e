"""No secret reaches the audit log: a webhook URL is kept as its origin, secret-named keys of
free-form arguments and URL credentials as ``[redacted]``; other arguments as written.

The reproduction: an admin creates a Slack webhook, and ``auditLog.arguments`` gave back its
full URL, token included, though the graph shows only the URL's origin on purpose.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from dsa110.auth.identity import Role
from dsa110.auth.redaction import REDACTED, SENSITIVE_ARGUMENTS, redact, url_origin
from dsa110.db.tables import audit_log
from dsa110.settings import Settings
from schema.schema import build_schema
from tests.server.test_access import FAILED_GROUP, MUTATIONS, seeded_app

TOKEN = "SECRETTOKEN123"
SLACK = f"https://hooks.slack.com/services/T000/B000/{TOKEN}"
CREATE = """mutation($url: String!) { createWebhookSubscription(name: "x", url: $url, eventKinds: [ESE_CANDIDATE])
  { subscription { urlOrigin } } }"""
LOG = """query($f: AuditFilter) { auditLog(first: 10, filter: $f, direction: ASC) {
  nodes { actor operation arguments outcome } } }"""


async def test_a_webhook_url_is_audited_as_its_origin(
    empty_db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # (a database driver's debug log shows every statement's values)
    caplog.set_level(logging.DEBUG, logger="dsa110")  # the server's own logs, all of them
    async with seeded_app(empty_db_url, tmp_path) as app:
        http, headers = app.http, app.headers
        # The literal, a variable, and a refused attempt (an operator: refused before it runs).
        literal = CREATE.replace("($url: String!)", "").replace("$url", f'"{SLACK}"')
        made = await http.post("/graphql", json={"query": literal}, headers=headers[Role.ADMIN])
        assert made.json()["data"]["createWebhookSubscription"]["subscription"]["urlOrigin"] == (
            "https://hooks.slack.com"
        )
        refused = await http.post(
            "/graphql", json={"query": CREATE, "variables": {"url": SLACK}}, headers=headers[Role.OPERATOR]
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        conflict = await http.post(
            "/graphql", json={"query": CREATE, "variables": {"url": SLACK}}, headers=headers[Role.ADMIN]
        )
        assert conflict.json()["errors"][0]["extensions"]["code"] == "CONFLICT"  # the name is taken
        assert TOKEN not in conflict.text
        reprocess = {"query": MUTATIONS["reprocessGroup"].document, "variables": {"g": FAILED_GROUP}}
        await http.post("/graphql", json=reprocess, headers=headers[Role.OPERATOR])

        async with app.engine.connect() as conn:
            stored = (await conn.execute(select(audit_log.c.operation, audit_log.c.arguments))).all()
        hooks = [arguments for operation, arguments in stored if operation == "createWebhookSubscription"]
        assert len(hooks) == 3 and all(a["url"] == "https://hooks.slack.com" for a in hooks), hooks
        assert hooks[0]["name"] == "x" and hooks[0]["eventKinds"] == ["ESE_CANDIDATE"]
        assert TOKEN not in repr(stored)

        only = {"f": {"operations": ["createWebhookSubscription"]}}
        answer = await http.post(
            "/graphql", json={"query": LOG, "variables": only}, headers=headers[Role.ADMIN]
        )
        nodes = answer.json()["data"]["auditLog"]["nodes"]
        assert [n["outcome"] for n in nodes] == ["OK", "FORBIDDEN", "CONFLICT"]
        assert all(n["arguments"]["url"] == "https://hooks.slack.com" for n in nodes)
        assert TOKEN not in answer.text

        only = {"f": {"operations": ["reprocessGroup"]}}
        answer = await http.post(
            "/graphql", json={"query": LOG, "variables": only}, headers=headers[Role.ADMIN]
        )
        (node,) = answer.json()["data"]["auditLog"]["nodes"]
        assert node["arguments"] == {"groupId": FAILED_GROUP}  # a normal argument, as written
    assert TOKEN not in caplog.text


def test_free_form_secrets_and_url_credentials_are_redacted() -> None:
    arguments = {
        "kind": "NOOP",
        "params": {
            "message": "hi",
            "api_token": "t0k3n",
            "nested": [{"password": "hunter2", "depth": 3}],
            "archive": "https://user:pa55@archive.example.org/data",
        },
        "config": {"Authorization": "Bearer abc", "poll_interval": 2},
    }
    assert redact("submitJob", arguments) == {
        "kind": "NOOP",
        "params": {
            "message": "hi",
            "api_token": REDACTED,
            "nested": [{"password": REDACTED, "depth": 3}],
            "archive": "https://[redacted]@archive.example.org/data",
        },
        "config": {"Authorization": REDACTED, "poll_interval": 2},
    }
    assert arguments["params"]["api_token"] == "t0k3n"  # the resolver's own values are untouched
    assert redact("createWebhookSubscription", {"name": "x", "url": "not a url"})["url"] == REDACTED
    assert url_origin("https://h.example.org:8443/p?q=1") == "https://h.example.org:8443"
    assert url_origin("http://[::1]:9/x") == "http://[::1]:9"


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        # A token alone before the `@` (no `user:`): all of the userinfo goes.
        ("https://ghp_abc123@github.com/org/repo.git", "https://[redacted]@github.com/org/repo.git"),
        # A password holding an `@`: up to the authority's last `@`, none of it is kept.
        ("https://u:p@ss@h.example.org/x", "https://[redacted]@h.example.org/x"),
        ("postgres://ops:s3cr@t!@db:5432/dsa", "postgres://[redacted]@db:5432/dsa"),
        # Secret-named query parameters, inside any text; the others kept as written.
        (
            "fetch https://h.example.org/d?access_token=SEKRET&a=b%20c&page=2 now",
            "fetch https://h.example.org/d?access_token=[redacted]&a=b%20c&page=2 now",
        ),
        ("https://h/x?token=SEKRET", "https://h/x?token=[redacted]"),
        ("https://h/x?password=SEKRET&user=me", "https://h/x?password=[redacted]&user=me"),
        ("https://h/x?api_key=SEKRET", "https://h/x?api_key=[redacted]"),
        ("https://h/x?key=SEKRET", "https://h/x?key=[redacted]"),
        (
            "https://acct.blob.core.windows.net/c/f?sv=2022&sig=SEKRET",
            "https://acct.blob.core.windows.net/c/f?sv=2022&sig=[redacted]",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=SEKRET&X-Amz-Signature=SEKRET",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]",
        ),
        ("https://h/x?pwd=SEKRET&passphrase=SEKRET", "https://h/x?pwd=[redacted]&passphrase=[redacted]"),
        ("https://h/x?auth=SEKRET&author=me", "https://h/x?auth=[redacted]&author=me"),
        ("https://h/cb#access_token=SEKRET&state=1", "https://h/cb#access_token=[redacted]&state=1"),
        # Both at once, and two URLs in one text.
        (
            "a https://t@h/?token=SEKRET b http://u:v@g/",
            "a https://[redacted]@h/?token=[redacted] b http://[redacted]@g/",
        ),
        # Nothing secret: as written, byte for byte.
        ("https://h.example.org/a%2Fb?q=1&x=y#top", "https://h.example.org/a%2Fb?q=1&x=y#top"),
        ("see the docs", "see the docs"),
        # Not a URL urllib reads: only the scheme is kept.
        ("https://[::1/x?token=SEKRET", "https://[redacted]"),
        ("https://u:pa/ss@h/x", "https://[redacted]"),
        ("https://h:99999999/x", "https://[redacted]"),
    ],
)
def test_secrets_in_urls_are_redacted_in_any_text(written: str, kept: str) -> None:
    assert redact("submitJob", {"params": {"note": written}}) == {"params": {"note": kept}}
    assert redact("submitJob", {"params": {"notes": [written]}})["params"]["notes"] == [kept]


def test_more_secret_key_names_are_redacted() -> None:
    arguments = {"pwd": "a", "db_pwd": "b", "passphrase": "c", "auth": "d", "Auth": "e", "sig": "f"}
    assert redact("submitJob", {"params": arguments})["params"] == dict.fromkeys(arguments, REDACTED)
    # `auth` as a whole key only: an author is no secret.
    assert redact("submitJob", {"params": {"author": "me", "authority": "x"}})["params"] == {
        "author": "me",
        "authority": "x",
    }


def test_every_declared_sensitive_argument_exists() -> None:
    """A renamed argument would silently stop being redacted: the table must follow the schema."""
    schema = build_schema(Settings())._schema
    mutation = schema.mutation_type
    assert mutation is not None
    for field, paths in SENSITIVE_ARGUMENTS.items():
        assert field in mutation.fields, field
        for path in paths:
            head, *rest = path.split(".")
            argument = mutation.fields[field].args.get(head)
            assert argument is not None, (field, path)
            kind = argument.type
            for name in rest:
                while hasattr(kind, "of_type"):
                    kind = kind.of_type
                assert name in kind.fields, (field, path)  # type: ignore[attr-defined]
