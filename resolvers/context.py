"""What every resolver receives: the engine, settings, the event bus and per-request loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.settings import Settings
from loaders import Loaders


@dataclass
class GraphContext:
    engine: AsyncEngine
    settings: Settings
    loaders: Loaders
    bus: Any = None
    request: Any = None
    response: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
