"""Identity and trust: API keys, OIDC tokens, roles, the audit log, request budgets.

No HTTP here: the server extracts credentials from requests and calls ``Authenticator``;
the schema checks roles with ``Identity.require`` and records mutations in the audit log.
"""

from dsa110.auth.identity import (
    IDENTITY_SCOPE_KEY,
    Forbidden,
    Identity,
    Role,
    Unauthenticated,
    anonymous,
    identity_in,
)

__all__ = [
    "IDENTITY_SCOPE_KEY",
    "Forbidden",
    "Identity",
    "Role",
    "Unauthenticated",
    "anonymous",
    "identity_in",
]
