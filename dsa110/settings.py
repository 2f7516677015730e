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
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]
