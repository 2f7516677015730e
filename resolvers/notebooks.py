"""Writing QA files for the graph's mutations: a group's notebook, an MS's calibration
plots; each written file is recorded as a QA artefact linked to what it shows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dsa110.ops.files import notebooks, paths
from dsa110.ops.files.notebooks import NOTEBOOK_TYPES
from dsa110.ops.files.pictures import write_atomic
from dsa110.ops.qa_artifacts import register_artifact
from loaders.entities import CALTABLE, GROUP, GROUP_IMAGES, GROUP_MEASUREMENT_SETS, MS
from resolvers import files, links, lists, qa
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput, NotFound

NOTEBOOK_MEDIA = "application/x-ipynb+json"


async def _group_files(ctx: GraphContext, group: Any) -> tuple[list[Path], list[Path], list[Path], list[Any]]:
    """Existing MS, calibration tables (beside the MS) and images of a group."""
    ms_rows = await links.all_of(ctx, GROUP_MEASUREMENT_SETS, group.pk)
    images = await links.all_of(ctx, GROUP_IMAGES, group.pk)
    ms_meta = [m for m in await asyncio.gather(*(files.ms_metadata(ctx, r.path) for r in ms_rows)) if m]
    tables = [t for m in ms_meta for t in await files.caltables_next_to(ctx, m)]
    image_paths = await asyncio.to_thread(
        lambda: [p for r in images if (p := _existing(r.path, ctx.settings.file_roots)) is not None]
    )
    return [m.path for m in ms_meta], [t.path for t in tables], image_paths, ms_rows


def _existing(raw: str, roots: tuple[Path, ...]) -> Path | None:
    try:
        return paths.resolve_stored(raw, roots, paths.Kind.FILE)
    except LookupError:
        return None


async def generate(
    ctx: GraphContext, group_id: str, notebook_type: str, output_path: str | None
) -> tuple[Path, dict[str, Any] | None, int]:
    if notebook_type not in NOTEBOOK_TYPES:
        raise BadUserInput(f"notebookType must be one of {', '.join(NOTEBOOK_TYPES)}", field="notebookType")
    group = await lists.by_natural_key(ctx, GROUP, group_id[:64])
    ms_paths, table_paths, image_paths, ms_rows = await _group_files(ctx, group)
    if not (ms_paths or image_paths):
        raise NotFound(f"group {group_id} has no MS or image on disk to put in a notebook")
    qa_dir = ctx.settings.qa_dir
    if output_path is None:
        target = qa_dir / "notebooks" / f"{group.group_id.replace(':', '')}_{notebook_type}.ipynb"
    else:
        target = await asyncio.to_thread(
            paths.resolve_new_path, output_path, ctx.settings.file_roots, "outputPath"
        )
        if target.suffix != ".ipynb":
            raise BadUserInput("outputPath must end in .ipynb", field="outputPath")
    notebook = notebooks.build_notebook(
        f"QA of observation group {group.group_id}",
        ms_paths=ms_paths,
        caltable_paths=table_paths,
        image_paths=image_paths,
        notebook_type=notebook_type,
    )
    written = await asyncio.to_thread(notebooks.write_notebook, notebook, target)
    size = await asyncio.to_thread(lambda: written.stat().st_size)
    row = await register_artifact(
        ctx.engine,
        written,
        kind="notebook",
        media_type=NOTEBOOK_MEDIA,
        size_bytes=size,
        group_pk=group.pk,
        ms_pk=ms_rows[0].pk if ms_rows else None,
    )
    return written, row, len(notebook.cells)


async def record_calibration_plots(ctx: GraphContext, ms_path: str) -> list[dict[str, Any]]:
    meta = await files.ms_at(ctx, ms_path)
    ms_row = await ctx.loaders.by_key(MS, "path").load(str(meta.path))
    table = await qa.bandpass_table(ctx, meta)
    if table is None:
        raise NotFound("no bandpass table beside this MS")
    table_row = await ctx.loaders.by_key(CALTABLE, "path").load(str(table.path))
    made = [path for _, path in await qa.bandpass_plots(ctx, meta)]
    spw = await qa.spw_plot(ctx, meta)
    if spw is not None:
        # The overview is cached by content; a stable copy beside the bandpass plots is recorded.
        stable = made[0].parent.parent / "spw_overview.png" if made else spw
        if stable != spw:
            await asyncio.to_thread(lambda: write_atomic(stable, spw.read_bytes()))
        made.append(stable)
    sizes = await asyncio.to_thread(lambda: [p.stat().st_size for p in made])
    rows = []
    for path, size in zip(made, sizes, strict=True):
        rows.append(
            await register_artifact(
                ctx.engine,
                path,
                kind="plot",
                media_type="image/png",
                size_bytes=size,
                group_pk=ms_row.group_pk if ms_row else None,
                ms_pk=ms_row.pk if ms_row else None,
                caltable_pk=table_row.pk if table_row else None,
            )
        )
    return rows
