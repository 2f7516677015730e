"""What an operation will cost, computed from the document before anything executes.

The depth, alias and token limits bound the size of a document, not the work it asks
for: ``sources(first: 500) { measurements(first: 500) { image { measurements(first:
500) ... } } }`` is small and legal, and asks for 500^4 rows. This module estimates the
work as Saleor's cost map and GitHub's node limit do (graphql-servers §4.2):

* every field that returns an object (or a list of them) costs 1 per parent object,
  and each item of a list 1 more; leaves cost nothing (they are read from a row
  already loaded);
* a list multiplies the cost of everything below it by its size: a connection's page
  (``first``/``last``; the default page when absent), or a list field's ``limit``/
  ``first``/``last``/``rows`` argument, or an estimate for unbounded lists (``LIST_SIZES``);
* fields that compute per object (fits, profiles, statistics, light curves, file
  readers, remote catalogs) cost ``FIELD_WEIGHTS`` instead of 1;
* a list asked in an order other than its default (``orderBy``) costs each item
  ``ORDERED_ITEM_COST`` more: the database sorts the rows it would otherwise read in index
  or link order (a source's measurements by SNR took 1.3-2.2 times the default order's
  time on SQLite and PostgreSQL, 200 sources x 5,000 epochs).

So a field costs its weight plus the cost of its selection, the latter times the
list's size (and 1 more per item) for a list field; summed over the document with
fragments expanded (each fragment costed once per context, so fragment fan-out cannot
blow up the analysis). Variables are read from the request; a variable
the request does not give costs what its default (or the field's default) costs.
Introspection (``__schema``, ``__type``) is free. The result is an upper-bound
estimate, not a measurement: its purpose is to refuse what is certainly too much.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_interface_type,
    is_list_type,
    is_object_type,
)
from graphql.language import DocumentNode

from loaders.pagination import DEFAULT_PAGE_SIZE

PAGE_ARGUMENTS: Final = ("first", "last")
"""Relay page sizes; absent, a connection returns ``DEFAULT_PAGE_SIZE`` items."""
LIST_ARGUMENTS: Final = ("first", "last", "limit", "rows", "topN")
"""Arguments that bound the length of a plain list field."""
LIST_SIZE: Final = 10
"""Estimated length of a list field with no bounding argument (a source's candidates,
an image's mosaics...): small in practice; the fields where it is not are in LIST_SIZES."""
ORDERED_ITEM_COST: Final = 1
"""What a list item costs more when the list is sorted by ``orderBy`` (1: twice a plain item)."""
MAX_LIST_ARGUMENT: Final = 100_000
"""A bounding argument larger than this is costed as this (the field refuses it anyway)."""

LIST_SIZES: Final[Mapping[str, int]] = {
    "LightCurve.points": 500,  # one per epoch: 288 a day at 5-minute cadence
    "Group.subbands": 16,
    "Group.uvhFiles": 16,
    "DataProduct.ancestors": 50,
    "DataProduct.descendants": 50,
    "Profile.points": 200,
    "SystemMetrics.disks": 10,
    "MsFile.antennas": 120,
    "CalTableFile.perAntenna": 120,
    "Query.calTableFiles": 200,
    "ObservationTimeline.segments": 50_000,  # at most one per group it covers (resolvers.timeline)
}
"""Unbounded lists whose usual length is far from ``LIST_SIZE``."""

FIELD_WEIGHTS: Final[Mapping[str, int]] = {
    # image analysis on the FITS file (worker thread, scipy/numpy)
    "Image.fit": 100,
    "FitsFile.fit": 100,
    "FitsFile.regionStatistics": 20,
    "FitsFile.pixelValues": 20,
    "Image.profile": 20,
    "Image.slice": 10,
    "Image.catalogOverlay": 20,
    # up to 30 Gaussian fits (resolvers.catalog_validation.MAX_FITS, each an Image.fit) and a
    # catalog overlay, all on the FITS file
    "Image.catalogValidation": 3_000,
    "Mutation.generateValidationReport": 3_000,  # the same checks, then one page written
    "Profile.fit": 20,
    "Region.statistics": 20,
    # per-source science: a light curve reads every epoch and normalises it
    "Source.lightCurve": 10,
    "Source.postageStamps": 5,
    # remote services (SIMBAD/NED/Gaia), cached but slow when not
    "Source.externalCatalogs": 100,
    "Query.externalCatalog": 100,
    "Query.catalogSources": 10,
    # files read on demand (casacore, astropy)
    "Query.msFile": 50,
    "Query.calTableFile": 50,
    "Query.calTableFiles": 20,
    "Query.fitsFile": 50,
    "Query.thumbnail": 50,
    "Query.casaTable": 20,
    "Query.uvhFile": 20,
    "MeasurementSet.file": 50,
    "CalTable.file": 50,
    "UvhFile.header": 20,
    "MsFile.flagging": 50,
    "MsFile.calibratorMatches": 20,
    "MsFile.validateCalTable": 50,
    "MsFile.calibrationQa": 50,
    "MsFile.calTableCompleteness": 20,
    "MsFile.bandpassPlots": 50,
    "MsFile.spwPlot": 50,
    "MsFile.calTables": 20,
    # walks of the lineage graph
    "DataProduct.ancestors": 10,
    "DataProduct.descendants": 10,
    # one aggregate statement over every observation group
    "Query.observationTimeline": 20,
    # counts: one aggregate statement per connection
    "*.totalCount": 1,
}
"""Fields that compute per object, by ``Type.field`` (``*.field``: on every type)."""


@dataclass(frozen=True)
class CostModel:
    max_page_size: int = 500
    default_page_size: int = DEFAULT_PAGE_SIZE
    list_size: int = LIST_SIZE
    list_sizes: Mapping[str, int] = field(default_factory=lambda: dict(LIST_SIZES))
    weights: Mapping[str, int] = field(default_factory=lambda: dict(FIELD_WEIGHTS))


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        model: CostModel,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.model = model
        self._fragment_costs: dict[tuple[str, str, int | None], int] = {}

    def selection_set(self, parent: GraphQLNamedType, selections: SelectionSetNode, page: int | None) -> int:
        """Cost of ``selections`` on one object of type ``parent``.

        ``page``: when ``parent`` is a connection, the size of its page (its list fields
        hold that many items).
        """
        total = 0
        for selection in selections.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection, page)
            elif isinstance(selection, InlineFragmentNode):
                on = (
                    self._type_named(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total += self.selection_set(on or parent, selection.selection_set, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, page)
        return total

    def _included(self, selection: SelectionNode) -> bool:
        """False when ``@skip``/``@include`` leave the selection out (unknown: counted)."""
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments or () if a.name.value == "if"), None)
            if isinstance(condition, VariableNode):
                value = self.variables.get(condition.name.value)
            elif isinstance(condition, BooleanValueNode):
                value = condition.value
            else:
                continue
            if isinstance(value, bool) and value == (name == "skip"):
                return False
        return True

    def _fragment(self, name: str, page: int | None) -> int:
        fragment = self.fragments.get(name)
        if fragment is None:
            return 0
        on = self._type_named(fragment.type_condition.name.value)
        if on is None:
            return 0
        key = (name, on.name, page)
        if key not in self._fragment_costs:
            self._fragment_costs[key] = 0  # a cycle (refused by validation) costs nothing more
            self._fragment_costs[key] = self.selection_set(on, fragment.selection_set, page)
        return self._fragment_costs[key]

    def field(self, parent: GraphQLNamedType, node: FieldNode, page: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # introspection and __typename
        definition = _field_of(parent, name)
        if definition is None:
            return 0  # unknown fields are refused by validation
        key = f"{parent.name}.{name}"
        return_type = definition.type
        named = get_named_type(return_type)
        weight = self.model.weights.get(key, self.model.weights.get(f"*.{name}"))
        if not is_composite_type(named) or node.selection_set is None:
            return weight or 0
        own = 1 if weight is None else weight
        sorted_item = ORDERED_ITEM_COST if self._reordered(definition, node) else 0
        child_page = self._page_size(definition, node) if _is_connection(named) else None
        children = self.selection_set(named, node.selection_set, child_page)
        if child_page is not None:
            children += child_page * sorted_item  # the connection's items, sorted
        if not is_list_type(get_nullable_type(return_type)):
            return own + children
        size = self._list_size(key, definition, node, page)
        return own + size * (1 + sorted_item + children)  # each item is a row read and an object built

    def _reordered(self, definition: GraphQLField, node: FieldNode) -> bool:
        """Whether ``orderBy`` asks for an order other than the field's default one."""
        declared = definition.args.get("orderBy")
        given = next((a.value for a in node.arguments or () if a.name.value == "orderBy"), None)
        if declared is None or given is None or isinstance(given, NullValueNode):
            return False
        if isinstance(given, VariableNode):
            value = self.variables.get(given.name.value)
            chosen = getattr(value, "name", value)  # an enum member, or its name as sent
        else:
            chosen = given.value if isinstance(given, EnumValueNode) else None
        default = declared.default_value
        default_name = getattr(default, "name", default)
        return chosen is not None and chosen != default_name

    def _list_size(self, key: str, definition: GraphQLField, node: FieldNode, page: int | None) -> int:
        if page is not None:
            return page  # a connection's edges/nodes
        for argument in LIST_ARGUMENTS:
            if argument in definition.args:
                value = self._argument(definition, node, argument)
                if isinstance(value, int) and not isinstance(value, bool):
                    return max(0, min(value, MAX_LIST_ARGUMENT))
        return self.model.list_sizes.get(key, self.model.list_size)

    def _page_size(self, definition: GraphQLField, node: FieldNode) -> int:
        model = self.model
        for argument in PAGE_ARGUMENTS:
            value = self._argument(definition, node, argument)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(0, min(value, model.max_page_size))
        # `before` alone pages back from a cursor by up to a whole page
        before = self._argument(definition, node, "before") if "before" in definition.args else None
        return model.max_page_size if before is not None else model.default_page_size

    def _argument(self, definition: GraphQLField, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value, Undefined)
                if given is not Undefined:
                    return given
                break  # not given: the field's own default applies
            return None
        declared = definition.args.get(name)
        if declared is None:
            return None
        default = declared.default_value
        return None if default is Undefined else default

    def _type_named(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)


def _field_of(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if is_object_type(parent) or is_interface_type(parent):
        fields: dict[str, GraphQLField] = parent.fields
        return fields.get(name)
    return None  # a union: only fragments select from it


def _is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and "edges" in named.fields and "pageInfo" in named.fields


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
        elif isinstance(definition.default_value, EnumValueNode):  # an orderBy's, say
            defaults[definition.variable.name.value] = definition.default_value.value
    return defaults


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == operation_name), None)


class _Reads(dict[str, Any]):
    """The variables, noting which ones the costing reads."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    model: CostModel | None = None,
) -> int:
    """The estimated cost of the operation ``operation_name`` of a validated ``document``."""
    return operation_cost_and_reads(schema, document, operation_name, variables, model)[0]


def operation_cost_and_reads(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    model: CostModel | None = None,
) -> tuple[int, frozenset[str]]:
    """``operation_cost``, and the names of the variables it depends on: the same document
    with the same values for those costs the same (``schema.budget`` caches on that)."""
    operation = select_operation(document, operation_name)
    if operation is None:
        return 0, frozenset()  # no such operation: execution refuses it
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0, frozenset()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    given = _Reads({**_variable_defaults(operation), **(variables or {})})
    costing = _Costing(schema, fragments, given, model or CostModel())
    return costing.selection_set(root, operation.selection_set, None), frozenset(given.read)
