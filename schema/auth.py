"""Identity in the graph: who am I, API keys (admin) and the audit log (admin)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from dsa110.auth import keys
from dsa110.auth.identity import Role
from dsa110.auth.key_events import announce
from dsa110.db.enums import OrderDirection
from dsa110.db.filters import AuditFilter, AuditOrderField
from loaders.entities import AUDIT
from schema.base import GraphInfo
from schema.inputs import _enum, _input
from schema.lists import list_root
from schema.permissions import requires

_enum(Role, "Role", "What a caller may do: viewer reads; operator runs the pipeline; admin also manages it.")
_input(AuditFilter, "AuditFilter")
_enum(AuditOrderField, "AuditOrderField", "Columns the audit log can be sorted by.")


@strawberry.type(description="The caller as the server authenticated them.")
class Me:
    name: str = strawberry.field(description="`key:<name>`, `oidc:<subject>` or `anonymous`.")
    kind: str = strawberry.field(description="`key`, `oidc` or `anonymous`.")
    role: Role | None = strawberry.field(description="None when anonymous.")


@strawberry.type(description="An API key (its secret is shown only once, when it is made).")
class ApiKey:
    name: str
    role: Role
    prefix: str = strawberry.field(description="The key's public part: `d110_<prefix>_...`.")
    created_at: datetime
    revoked_at: datetime | None


@strawberry.type(description="A new API key and its secret: store the secret now, it is not kept.")
class NewApiKey:
    key: ApiKey
    secret: str


@strawberry.type(description="One mutation attempted: who, what, with what, when, from where, outcome.")
class AuditEntry:
    pk: strawberry.Private[int]
    at: datetime
    actor: str = strawberry.field(description="`key:<name>`, `oidc:<subject>` or `anonymous`.")
    actor_kind: str
    role: str | None
    operation: str = strawberry.field(description="The mutation field, e.g. `reprocessGroup`.")
    operation_name: str | None = strawberry.field(description="The GraphQL operation's own name.")
    arguments: JSON = strawberry.field(description="A bounded summary of the arguments.")
    address: str | None = strawberry.field(description="The client's address as the server saw it.")
    outcome: str = strawberry.field(description="`OK`, or the error code the caller got.")

    @strawberry.field(description="Integer id, increasing with time.")
    def entry_id(self) -> int:
        return self.pk


def _api_key(info: keys.KeyInfo) -> ApiKey:
    return ApiKey(
        name=info.name,
        role=info.role,
        prefix=info.prefix,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
    )


@strawberry.type
class AuthQuery:
    @strawberry.field(description="Who the server takes the caller to be, and their role.")
    def me(self, info: GraphInfo) -> Me:
        who = info.context.identity
        return Me(name=who.name, kind=who.kind, role=who.role)

    audit_log = list_root(
        AUDIT,
        AuditEntry,
        AuditFilter,
        AuditOrderField,
        AuditOrderField.AT,
        OrderDirection.DESC,
        "Every mutation attempted, newest first (admin).",
        extensions=[requires(Role.ADMIN)],
    )

    @strawberry.field(
        description="Every API key, revoked ones included (admin).", extensions=[requires(Role.ADMIN)]
    )
    async def api_keys(self, info: GraphInfo) -> list[ApiKey]:
        return [_api_key(k) for k in await keys.list_keys(info.context.engine)]


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description="Make an API key (admin); the answer holds its secret, shown this once.",
        extensions=[requires(Role.ADMIN)],
    )
    async def create_api_key(self, info: GraphInfo, name: str, role: Role) -> NewApiKey:
        made = await keys.create_key(info.context.engine, name, role)
        return NewApiKey(key=_api_key(made.info), secret=made.secret)

    @strawberry.mutation(
        description="Revoke an API key by name (admin): refused from the answer on by this server "
        "process, and by the others as soon as the shared event bus tells them (at most "
        "`DSA110_API_KEY_CACHE_S` seconds later if the bus is down).",
        extensions=[requires(Role.ADMIN)],
    )
    async def revoke_api_key(self, info: GraphInfo, name: str) -> ApiKey:
        ctx = info.context
        revoked = await keys.revoke_key(ctx.engine, name)
        await announce(ctx.authenticator, ctx.bus.publish if ctx.bus is not None else None, revoked)
        return _api_key(revoked)
