"""Runtime settings, read from the environment (``DSA110_*``) and overridable by the CLI.

One frozen dataclass, passed explicitly to whatever needs it: no module-level globals,
so tests can build several apps with different settings in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from dsa110.events.bus import DEFAULT_NAMESPACE


def _default_data_dir() -> Path:
    return Path(os.environ.get("DSA110_DATA_DIR", "data")).resolve()


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str | None = None
    events_url: str = "memory://"
    events_namespace: str = DEFAULT_NAMESPACE
    """Prefix of the bus channels: keeps deployments (or test runs) sharing one Redis or
    PostgreSQL apart."""
    host: str = "127.0.0.1"
    port: int = 8000
    metrics_interval_s: float = 10.0
    metrics_retention: int = 8640
    max_page_size: int = 500
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_body_bytes: int = 1_000_000
    introspection: bool = True
    extra_file_roots: tuple[Path, ...] = ()
    """Directories besides the data directory whose files the API may read (MS, cal tables,
    UVH5, QA); nothing outside ``file_roots`` is ever opened for a client."""
    products_root: Path | None = None
    """Where published products go (legacy: an HDD area apart from the SSD staging area);
    ``<data_dir>/products`` by default."""

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; SQLite under the data directory unless one is given."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'dsa110.sqlite3'}"

    @property
    def events_shared(self) -> bool:
        """The bus reaches other processes (Redis or PostgreSQL), not just this one."""
        return not self.events_url.startswith("memory:")

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    # -- file areas (all inside ``file_roots``) ---------------------------------------------

    @property
    def staging_dir(self) -> Path:
        """Where the pipeline writes products before publication (MS, tables, images...)."""
        return self.data_dir

    @property
    def products_dir(self) -> Path:
        return self.products_root if self.products_root is not None else self.data_dir / "products"

    @property
    def ms_dir(self) -> Path:
        return self.data_dir / "ms"

    @property
    def incoming_dir(self) -> Path:
        """Raw UVH5 subband files as the correlator writes them."""
        return self.data_dir / "incoming"

    @property
    def qa_dir(self) -> Path:
        return self.data_dir / "qa"

    @property
    def cache_dir(self) -> Path:
        """Derived files (thumbnails, plots) that can be rebuilt at any time."""
        return self.data_dir / ".cache"

    @property
    def file_roots(self) -> tuple[Path, ...]:
        return tuple(
            dict.fromkeys(p.resolve() for p in (self.data_dir, self.products_dir, *self.extra_file_roots))
        )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        base = cls(
            data_dir=_default_data_dir(),
            database_url=env.get("DSA110_DATABASE_URL") or None,
            events_url=env.get("DSA110_EVENTS_URL", "memory://"),
            events_namespace=env.get("DSA110_EVENTS_NAMESPACE") or DEFAULT_NAMESPACE,
            host=env.get("DSA110_HOST", "127.0.0.1"),
            port=int(env.get("DSA110_PORT", "8000")),
            metrics_interval_s=float(env.get("DSA110_METRICS_INTERVAL_S", "10")),
            extra_file_roots=tuple(Path(p) for p in env.get("DSA110_FILE_ROOTS", "").split(os.pathsep) if p),
            products_root=Path(env["DSA110_PRODUCTS_DIR"]) if env.get("DSA110_PRODUCTS_DIR") else None,
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]
