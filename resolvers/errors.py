"""Errors a client may see, each with a stable ``extensions.code``.

They are the domain's public errors (``dsa110.errors``) under the names the graph uses.
Anything else raised inside a resolver is an internal error and is masked before it
reaches the client (see ``schema.errors``).
"""

from __future__ import annotations

from dsa110.errors import ConflictError as Conflict
from dsa110.errors import InputError as BadUserInput
from dsa110.errors import NotFoundError as NotFound
from dsa110.errors import PublicError as GraphError
from dsa110.errors import UnavailableError as Unavailable


class Forbidden(GraphError):
    code = "FORBIDDEN"


__all__ = ["BadUserInput", "Conflict", "Forbidden", "GraphError", "NotFound", "Unavailable"]
