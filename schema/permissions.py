"""Every mutation declares the role it needs; mutations are audited.

How a field declares its role::

    @strawberry.mutation(description="...", extensions=[requires(Role.OPERATOR)])
    async def reprocess_group(self, info: GraphInfo, group_id: str) -> Group: ...

``requires(role)`` refuses a caller without credentials (``UNAUTHENTICATED``) or with a
lower role (``FORBIDDEN``) before the resolver runs, and on a Mutation root field writes
one audit-log row whatever the outcome (``OK`` or the error's code). ``build_schema``
refuses to build a schema in which any Mutation field lacks it, so a new mutation cannot
ship open by omission. Query fields may use it too (admin-only reads such as ``auditLog``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import OperationType
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from dsa110.auth.audit import OK, AuditRecord, record
from dsa110.auth.identity import Role
from dsa110.errors import PublicError
from resolvers.context import GraphContext


class RoleRequired(FieldExtension):
    def __init__(self, role: Role) -> None:
        self.role = role

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info[GraphContext, None], **kwargs: Any
    ) -> Any:
        ctx = info.context
        audited = info.path.prev is None and info.operation.operation is OperationType.MUTATION
        try:
            # Anonymous callers may hold the viewer role for reads, never for a mutation.
            anonymous_read = (
                ctx.settings.anonymous_read and info.operation.operation is not OperationType.MUTATION
            )
            ctx.identity.require(self.role, f"`{info.field_name}`", anonymous_read=anonymous_read)
            result = await next_(source, info, **kwargs)
        except BaseException as exc:
            if audited:
                await _audit(info, kwargs, outcome_of(exc))
            raise
        if audited:
            await _audit(info, kwargs, OK)
        return result


def requires(role: Role) -> RoleRequired:
    """The field extension declaring that a field needs ``role`` (see the module docstring)."""
    return RoleRequired(role)


def declared_role(field: Any) -> Role | None:
    """The role a strawberry field declares with ``requires``, or None."""
    for extension in getattr(field, "extensions", None) or ():
        if isinstance(extension, RoleRequired):
            return extension.role
    return None


def field_roles(schema: Any, type_name: str) -> dict[str, Role | None]:
    """GraphQL field name -> declared role, for every field of ``type_name`` (e.g. ``Mutation``)."""
    definition = schema.get_type_by_name(type_name)
    if definition is None:
        return {}
    name_of = schema.config.name_converter.from_field
    return {name_of(field): declared_role(field) for field in definition.fields}


def undeclared_mutations(schema: Any) -> list[str]:
    """Mutation fields of ``schema`` that declare no role (must be empty)."""
    return [name for name, role in field_roles(schema, "Mutation").items() if role is None]


def outcome_of(exc: BaseException) -> str:
    if isinstance(exc, PublicError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    return "INTERNAL_SERVER_ERROR"


async def _audit(info: Info[GraphContext, None], arguments: dict[str, Any], outcome: str) -> None:
    name = info.operation.name
    await record(
        info.context.engine,
        AuditRecord(
            identity=info.context.identity,
            operation=info.field_name,
            operation_name=name.value if name is not None else None,
            arguments=arguments,
            outcome=outcome,
        ),
    )
