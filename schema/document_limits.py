"""The depth and alias limits as validation rules that read each fragment once.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk the document with every
fragment spread expanded in place, so a document of 30 fragments that each spread the next
twice (about 1.5 kB) makes them walk 2^30 selections: one such request held the event loop
for minutes. These rules count the same things (a field with a selection set is one level
deeper; introspection fields do not count; aliases are counted with fragments expanded) but
remember what each fragment contributes, so the work is linear in the document's size
whatever its fan-out. A cycle of fragments (refused by the standard rules anyway) counts
nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

Measure = Callable[[SelectionSetNode | None], int]


def _memoised(
    fragments: Mapping[str, FragmentDefinitionNode],
    of_field: Callable[[FieldNode, Measure], int],
    combine: Callable[[list[int]], int],
) -> Measure:
    """A measure of selection sets in which each named fragment is measured once."""
    known: dict[str, int] = {}

    def measure(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        parts: list[int] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                parts.append(of_field(selection, measure))
            elif isinstance(selection, InlineFragmentNode):
                parts.append(measure(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in known:
                    known[name] = 0  # while it is measured: a cycle adds nothing
                    fragment = fragments.get(name)
                    known[name] = measure(fragment.selection_set) if fragment is not None else 0
                parts.append(known[name])
        return combine(parts)

    return measure


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """Refuse an operation whose fields nest deeper than ``max_depth``."""

    def of_field(field: FieldNode, measure: Measure) -> int:
        if field.name.value.startswith("__") or field.selection_set is None:
            return 0
        return 1 + measure(field.selection_set)

    class DepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _memoised(_fragments(context), of_field, lambda parts: max(parts, default=0))
            for operation in _operations(context):
                if measure(operation.selection_set) > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", [operation])
                    )

    return DepthLimit


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    """Refuse a document with more than ``max_aliases`` aliased fields, fragments expanded."""

    def of_field(field: FieldNode, measure: Measure) -> int:
        return (1 if field.alias else 0) + measure(field.selection_set)

    class AliasLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _memoised(_fragments(context), of_field, sum)
            total = sum(measure(operation.selection_set) for operation in _operations(context))
            if total > max_aliases:
                context.report_error(GraphQLError(f"{total} aliases found. Allowed: {max_aliases}"))

    return AliasLimit
