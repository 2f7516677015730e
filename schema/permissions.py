"""Every mutation declares the role it needs; mutations are audited.

How a field declares its role::

    @strawberry.mutation(description="...", extensions=[requires(Role.OPERATOR)])
    async def reprocess_group(self, info: GraphInfo, group_id: str) -> Group: ...

``requires(role)`` refuses a caller without credentials (``UNAUTHENTICATED``) or with a
lower role (``FORBIDDEN``) before the resolver runs, and on a Mutation root field writes
one audit-log row whatever the outcome (``OK``, the error's code, or ``CANCELLED`` /
``DEADLINE_EXCEEDED`` when the request's work was stopped half-way). ``build_schema``
refuses to build a schema in which any Mutation field lacks it, so a new mutation cannot
ship open by omission. Query fields may use it too (admin-only reads such as ``auditLog``).
``MutationGate`` (a schema extension) checks every root field of a mutation operation
before any runs, so a refused operation changes nothing at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_operation_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import value_from_ast_untyped
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.types import Info

from dsa110.auth.audit import OK, AuditRecord, record, start_record
from dsa110.auth.identity import Identity, Role
from dsa110.auth.redaction import redact
from dsa110.db.work import CANCELLED, DEADLINE_EXCEEDED, current_work
from dsa110.errors import PublicError
from resolvers.context import GraphContext

STOPPED = (CANCELLED, DEADLINE_EXCEEDED)
"""The outcomes of a mutation whose request's work was stopped half-way."""


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
                outcome = outcome_of(exc)
                if outcome in STOPPED:
                    # The request's work was stopped: its answer (a deadline's 504, the
                    # end of a cancelled operation) must not wait for the record.
                    start_record(ctx.engine, _entry(info, outcome))
                else:
                    await record(ctx.engine, _entry(info, outcome))
            raise
        if audited:
            await record(ctx.engine, _entry(info, OK))
        return result


class MutationGate(SchemaExtension):
    """All or nothing: a mutation operation runs only if the caller may run every root field.

    Checked before anything executes, so ``mutation { a: reprocessGroup(...) b: createApiKey(...) }``
    by an operator changes nothing (rather than reprocessing and then refusing the key). A
    refused operation answers one error (``UNAUTHENTICATED`` or ``FORBIDDEN``) and audits
    each root field with that outcome. ``RoleRequired`` still checks each field as it runs.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        refusal = self._refusal()
        if refusal is not None:
            error, fields = refusal
            for name, arguments in fields:
                await _record(
                    self.execution_context.context, name, self._operation_name(), arguments, error.code
                )
            self.execution_context.result = GraphQLExecutionResult(
                data=None,
                errors=[GraphQLError(error.message, original_error=error, extensions={"code": error.code})],
            )
        yield

    def _operation(self) -> OperationDefinitionNode | None:
        document = self.execution_context.graphql_document
        if document is None:
            return None
        return get_operation_ast(document, self.execution_context.operation_name)

    def _operation_name(self) -> str | None:
        operation = self._operation()
        return operation.name.value if operation is not None and operation.name is not None else None

    def _refusal(self) -> tuple[PublicError, list[tuple[str, dict[str, Any]]]] | None:
        ec = self.execution_context
        operation = self._operation()
        if operation is None or operation.operation is not OperationType.MUTATION:
            return None
        assert ec.graphql_document is not None
        fields = list(_root_fields(operation.selection_set, ec.graphql_document))
        roles = field_roles(ec.schema, "Mutation")
        identity = ec.context.identity
        for node in fields:
            role = roles.get(node.name.value)
            if role is None:
                continue  # unknown fields are the validator's business; undeclared ones cannot exist
            try:
                identity.require(role, f"`{node.name.value}`")
            except PublicError as refused:
                return refused, [(f.name.value, _arguments(f, ec.variables)) for f in fields]
        return None


def _root_fields(selection_set: SelectionSetNode, document: DocumentNode) -> Iterator[FieldNode]:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, document)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            yield from _root_fields(fragments[selection.name.value].selection_set, document)


def _arguments(node: FieldNode, variables: dict[str, Any] | None) -> dict[str, Any]:
    """The arguments as the client wrote them (GraphQL names; literals and variables, uncoerced)."""
    try:
        values = {
            arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in node.arguments or ()
        }
        return {name: value for name, value in values.items() if value is not Undefined}  # absent variables
    except Exception:  # malformed arguments: recorded as unknown, the refusal stands
        return {}


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
    """The audit outcome of a mutation that raised ``exc``.

    A request's work stopped (deadline passed, client gone: ``dsa110.db.work``) is the
    outcome, whatever it raised on the way (cancelled, a statement interrupted, refused).
    """
    work = current_work()
    if work is not None and work.stopped and work.code is not None:
        return work.code
    if isinstance(exc, PublicError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    return "INTERNAL_SERVER_ERROR"


def _entry(info: Info[GraphContext, None], outcome: str) -> AuditRecord:
    name = info.operation.name
    # As written in the document, like MutationGate records them (strawberry's Info keeps
    # graphql-core's field nodes only on its raw info).
    arguments = _arguments(info._raw_info.field_nodes[0], info.variable_values)
    return _audit_record(
        info.context.identity, info.field_name, name.value if name is not None else None, arguments, outcome
    )


async def _record(
    ctx: GraphContext, field: str, operation_name: str | None, arguments: dict[str, Any], outcome: str
) -> None:
    await record(ctx.engine, _audit_record(ctx.identity, field, operation_name, arguments, outcome))


def _audit_record(
    identity: Identity, field: str, operation_name: str | None, arguments: dict[str, Any], outcome: str
) -> AuditRecord:
    """The one way a record is made: its arguments with the secrets out (``dsa110.auth.redaction``)."""
    return AuditRecord(identity, field, operation_name, redact(field, arguments), outcome)
