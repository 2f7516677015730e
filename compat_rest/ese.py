"""ese: placeholder while the section is written."""

from __future__ import annotations

from compat_rest.routing import RestRoute
from dsa110.settings import Settings


def routes(settings: Settings) -> list[RestRoute]:
    return []
