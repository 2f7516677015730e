"""Breadth-first execution of queries: one pass per level of the document, not per value.

graphql-core completes a result value by value: for a list of 5,000 measurements it
builds 5,000 resolve infos, paths and coroutines per field, and awaits each DataLoader
future separately. That per-value machinery costs 10-30x the SQL it waits for
(docs/reference/graphql-servers.md §2.1-2.3). This executor walks the same validated
operation level by level instead, the way breadth-first engines do:

* every field of a level is resolved for all objects of the level in one loop; plain
  attribute fields are a single ``map``; resolver fields get one shared ``Info``;
* all awaitables of a level (DataLoader futures, async resolvers) are awaited together,
  so each loader still sees one batch per level and issues one statement;
* identical objects met several times at a level (the same image under many
  measurements) are completed once and their result shared;
* leaf values of the built-in scalars are passed through when already of the right type.

Semantics are graphql-core's: the same field collection, argument coercion,
serialisation, error paths and null propagation (a failed non-null field nulls its
nearest nullable ancestor). Mutations (serial by spec) and anything using incremental
delivery fall back to the stock executor. A test runs a corpus of documents through
both executors and requires identical responses.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from datetime import date, datetime
from enum import Enum
from types import CoroutineType, GeneratorType
from typing import Any, Final, NamedTuple

from graphql import (
    ExecutionResult,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    OperationType,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.error import located_error
from graphql.execution.executor import CollectedErrors
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from schema.arguments import ArgumentsConverter, plan_arguments

STRAWBERRY_FIELD = "strawberry-definition"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# Where a value sits in the response, so a non-null failure can null its ancestor:
# (container: dict or list holding the value, None for the response root; key;
#  nullable; slots of the object holding the container). A plain tuple: one is made per
# value position, and a NamedTuple's Python-level __new__ costs several times more.
Slot = tuple[Any, Any, bool, Sequence[Any]]
CONTAINER: Final = 0
KEY: Final = 1
NULLABLE: Final = 2
PARENTS: Final = 3
PathOf = Callable[[int], Path | None]


class _Plan(NamedTuple):
    kind: str  # "attr" | "call" | "call_args" | "resolve"
    name: str  # "attr": the attribute; "call_args": the resolver's info parameter ("" for none)
    func: Callable[..., Any] | None
    with_info: bool
    strawberry_field: Any
    leaf: Callable[[Any], Any] | None = None  # "attr" of a scalar or enum: its serializer
    nullable: bool = True
    exact: type | None = None  # a value of exactly this type is its own serialization
    small_int: bool = False  # "attr" of GraphQL's Int: an int in its 32-bit range is its own serialization
    convert: ArgumentsConverter | None = None  # "call_args": GraphQL arguments -> resolver kwargs
    with_self: bool = True  # "call_args": the resolver takes its object first


def _plan_field(field_def: GraphQLField, strawberry_schema: Any) -> _Plan:
    """Decide once per field how to resolve it for a whole level."""
    sfield = (field_def.extensions or {}).get(STRAWBERRY_FIELD)
    resolve = field_def.resolve
    if sfield is None or getattr(sfield, "extensions", None) or getattr(sfield, "permission_classes", None):
        return _Plan("resolve", "", resolve, True, sfield)
    resolver = sfield.base_resolver
    if resolver is None:
        nullable = not is_non_null_type(field_def.type)
        named = field_def.type if nullable else field_def.type.of_type  # type: ignore[union-attr]
        leaf = _fast_serializer(named) if is_leaf_type(named) else None
        exact = _EXACT.get(named.name) if is_leaf_type(named) and named is _BUILT_IN.get(named.name) else None
        small = named is GraphQLInt
        return _Plan("attr", sfield.python_name, None, False, sfield, leaf, nullable, exact, small_int=small)
    if field_def.args:
        return _plan_with_arguments(field_def, sfield, strawberry_schema)
    params = list(inspect.signature(resolver.wrapped_func).parameters)
    info_param = resolver.info_parameter
    self_param = resolver.self_parameter
    expected = [p for p in (self_param, info_param) if p is not None]
    if self_param is None or [p.name for p in expected] != params:
        return _Plan("resolve", "", resolve, True, sfield)
    return _Plan("call", "", resolver.wrapped_func, info_param is not None, sfield)


def _plan_with_arguments(field_def: GraphQLField, sfield: Any, strawberry_schema: Any) -> _Plan:
    """A resolver with arguments called directly with arguments converted by a planned
    function (``schema.arguments``), as strawberry's ``get_arguments`` would pass them."""
    resolve = field_def.resolve
    resolver = sfield.base_resolver
    if resolver.parent_parameter is not None or resolver.root_parameter is not None:
        return _Plan("resolve", "", resolve, True, sfield)
    converter = plan_arguments(
        sfield, strawberry_schema.schema_converter.scalar_registry, strawberry_schema.config
    )
    if converter is None:
        return _Plan("resolve", "", resolve, True, sfield)
    self_param, info_param = resolver.self_parameter, resolver.info_parameter
    named = {p.name for p in (self_param, info_param) if p is not None}
    arguments = {a.python_name for a in sfield.arguments}
    params = list(inspect.signature(resolver.wrapped_func).parameters)
    if set(params) != named | arguments or (self_param is not None and params[0] != self_param.name):
        return _Plan("resolve", "", resolve, True, sfield)
    info_name = info_param.name if info_param is not None else ""
    return _Plan(
        "call_args",
        info_name,
        resolver.wrapped_func,
        info_param is not None,
        sfield,
        convert=converter,
        with_self=self_param is not None,
    )


_PLAIN: Final = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict, datetime, date})
"""Types whose values are never awaitable: asked about 10^3 times a request (every leaf that
is not exactly its GraphQL type, every object of a list), the answer is a set look-up."""


def _known_plain(kind: type) -> bool:
    """Whether values of ``kind`` can never be awaited: the plain types, and the schema's own
    object types (strawberry types: no ``__await__``, not coroutines or generators; their
    instances hold columns or dataclass fields, never an ``__await__``; and enums)."""
    return kind in _PLAIN or (
        (hasattr(kind, "__strawberry_definition__") or issubclass(kind, Enum))
        and not hasattr(kind, "__await__")
        and not issubclass(kind, CoroutineType | GeneratorType)
    )


_BUILT_IN: Final = {t.name: t for t in (GraphQLString, GraphQLID, GraphQLFloat, GraphQLBoolean)}
_EXACT: Final = {"String": str, "ID": str, "Float": float, "Boolean": bool}


def _fast_serializer(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    serialize = leaf.serialize
    if leaf is GraphQLString or leaf is GraphQLID:
        return lambda v: v if type(v) is str else serialize(v)
    if leaf is GraphQLFloat:
        return lambda v: v if type(v) is float else serialize(v)
    if leaf is GraphQLInt:
        return lambda v: v if type(v) is int and _INT_MIN <= v <= _INT_MAX else serialize(v)
    if leaf is GraphQLBoolean:
        return lambda v: v if type(v) is bool else serialize(v)
    if isinstance(leaf, GraphQLEnumType):
        return _memo_serializer(serialize)
    return serialize


_ENUM_MEMO = 256  # an enum's values a memo keeps (the schema's enums have a handful each)


def _memo_serializer(serialize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An enum's serializer remembering its answers: strawberry's searches the enum's values
    for each member. The answer depends only on the value (and its type: a ``StrEnum``
    member equals its string); a value it refuses raises every time, as before."""
    memo: dict[tuple[type, Any], Any] = {}

    def memo_serialize(value: Any) -> Any:
        key = (type(value), value)
        try:
            return memo[key]
        except KeyError:
            pass
        except TypeError:  # unhashable: not an enum value, let the serializer say so
            return serialize(value)
        out = serialize(value)
        if len(memo) < _ENUM_MEMO:
            memo[key] = out
        return out

    return memo_serialize


class BreadthFirstExecutor(StrawberryGraphQLCoreExecutionContext):
    _plans: dict[int, _Plan]
    _serializers: dict[int, Callable[[Any], Any]]
    _fields: dict[int, tuple[GraphQLField, GraphQLObjectType]]  # id(details) -> field, parent type
    _root_nulled: bool
    _plain: set[type]  # types known never awaitable (``_known_plain``), grown as met

    def _maybe_awaitable(self, value: Any) -> bool:
        """``is_awaitable`` answered from the value's type when that type is known plain."""
        kind = type(value)
        if kind in self._plain:
            return False
        if _known_plain(kind):
            self._plain.add(kind)
            return False
        return bool(self.is_awaitable(value))

    def execute_collected_root_fields(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: Any,
        serially: bool,
        new_defer_usages: Sequence[Any],
    ) -> Any:
        # Mutations are serial by spec; a subscription event's root value is the event
        # itself (graphql-core's per-event executor): both keep the stock path.
        if serially or new_defer_usages or self.operation.operation is OperationType.SUBSCRIPTION:
            return super().execute_collected_root_fields(
                root_type, root_value, grouped_field_set, serially, new_defer_usages
            )
        return self._execute_root(root_type, root_value, grouped_field_set)

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        # graphql-core's resolve-info helpers are bound methods of this executor, and each
        # field error's traceback reaches them again (a resolver's frame, its info): reference
        # cycles, which leave the executor and all it holds (the request's context, loaders,
        # primed rows, collected fields) to the cyclic garbage collector, whose passes then
        # walk every row alive at that moment. A query is over once its response is built
        # (a subscription's executor builds one per event; incremental delivery goes on): it
        # lets go of both; the response keeps its errors.
        if self.operation.operation is OperationType.QUERY and isinstance(response, ExecutionResult):
            del self.async_helpers
            self.collected_errors = CollectedErrors()
        return response

    async def _execute_root(self, root_type: GraphQLObjectType, root_value: Any, grouped: Any) -> Any:
        # A field's plan and a leaf's serializer depend only on the schema: kept with it (the
        # ids are of its own field and type objects, which live as long as it does), so a
        # request does not inspect resolver signatures again.
        self._plans, self._serializers, self._plain = _schema_caches(self.schema)
        self._fields = {}
        self._root_nulled = False
        data: dict[str, Any] = dict.fromkeys(grouped)  # every level's keys in document order
        root: Slot = (None, None, False, ())
        await self._execute_level(root_type, [root_value], _no_path, grouped, [data], [[root]])
        return None if self._root_nulled else data

    # --- one level: all fields of all objects ------------------------------------------

    async def _execute_level(
        self,
        parent_type: GraphQLObjectType,
        sources: list[Any],
        paths: PathOf,
        grouped: Any,
        results: list[dict[str, Any]],
        slots: list[list[Slot]],
    ) -> None:
        resolved: list[tuple[str, Any, GraphQLField, list[Any]]] = []
        pending: list[tuple[list[Any], int, Any]] = []
        is_awaitable = self._maybe_awaitable
        for response_name, details in grouped.items():
            field_def = self.schema.get_field(parent_type, details[0].node.name.value)
            if field_def is None:
                for result in results:
                    result.pop(response_name, None)
                continue
            self._fields[id(details)] = (field_def, parent_type)
            plan = self._plans.get(id(field_def))
            if plan is None:
                plan = self._plans[id(field_def)] = _plan_field(field_def, self.schema._strawberry_schema)  # type: ignore[attr-defined]
            if plan.leaf is not None and self._attribute_leaves(plan, sources, results, response_name):
                continue
            values = self._resolve_all(parent_type, field_def, details, sources, paths, response_name)
            if not set(map(type, values)) <= self._plain:  # else none is awaitable: no look each
                for i, value in enumerate(values):
                    if is_awaitable(value):
                        pending.append((values, i, value))
            resolved.append((response_name, details, field_def, values))
        if pending:
            done = await _settle([p[2] for p in pending])
            for (values, i, _), value in zip(pending, done, strict=True):
                values[i] = value
        children = [
            self._complete_field(
                parent_type, response_name, details, field_def.type, values, paths, results, slots
            )
            for response_name, details, field_def, values in resolved
        ]
        nested = [c for c in children if c is not None]
        if len(nested) == 1:
            await nested[0]  # no task to schedule: one loop turn less per level
        elif nested:
            await asyncio.gather(*nested)

    def _attribute_leaves(
        self, plan: _Plan, sources: list[Any], results: list[dict[str, Any]], response_name: str
    ) -> bool:
        """A scalar read from an attribute, for the whole level in one loop (most of a row's
        fields). False, having decided nothing, when any value needs the general path (an
        error to locate, a null in a non-null field, an awaitable)."""
        serialize = plan.leaf
        assert serialize is not None
        name, nullable, exact, is_awaitable = plan.name, plan.nullable, plan.exact, self._maybe_awaitable
        small_int, plain = plan.small_int, self._plain
        try:
            for source, result in zip(sources, results, strict=True):
                value = getattr(source, name)
                kind = type(value)
                if kind is exact or (small_int and kind is int and _INT_MIN <= value <= _INT_MAX):
                    result[response_name] = value
                elif value is None:
                    if not nullable:
                        return False
                    result[response_name] = None
                elif kind in plain or not is_awaitable(value):
                    result[response_name] = serialize(value)
                else:
                    return False
        except Exception:
            return False
        return True

    def _resolve_all(
        self,
        parent_type: GraphQLObjectType,
        field_def: GraphQLField,
        details: Any,
        sources: list[Any],
        paths: PathOf,
        response_name: str,
    ) -> list[Any]:
        plan = self._plans[id(field_def)]  # planned by the level
        if plan.kind == "attr":
            name = plan.name
            try:
                return [getattr(source, name) for source in sources]
            except Exception:
                return [self._guard(getattr, source, name) for source in sources]
        node = details[0].node
        info = self.build_resolve_info(
            field_def, [d.node for d in details], parent_type, Path(paths(0), response_name, parent_type.name)
        )
        if plan.kind == "call":
            func = plan.func
            assert func is not None
            if plan.with_info:
                shared = Info(_raw_info=info, _field=plan.strawberry_field)
                return [self._guard(func, source, shared) for source in sources]
            return [self._guard(func, source) for source in sources]
        try:
            args = (
                get_argument_values(
                    field_def,
                    node,
                    self.variable_values,
                    details[0].fragment_variable_values,
                    self.hide_suggestions,
                )
                if field_def.args or node.arguments
                else {}
            )
        except Exception as error:
            return [error] * len(sources)
        if plan.kind == "call_args":
            return self._call_with_arguments(plan, info, args, sources)
        resolve = field_def.resolve or self.field_resolver
        return [self._guard(resolve, source, info, **args) for source in sources]

    def _call_with_arguments(
        self, plan: _Plan, info: Any, args: dict[str, Any], sources: list[Any]
    ) -> list[Any]:
        func, convert = plan.func, plan.convert
        assert func is not None and convert is not None
        shared = Info(_raw_info=info, _field=plan.strawberry_field) if plan.with_info else None
        values: list[Any] = []
        for source in sources:
            # Converted per object, as strawberry does: no two resolvers share an argument value.
            try:
                kwargs = convert(args)
            except Exception as error:
                values.append(error)
                continue
            if shared is not None:
                kwargs[plan.name] = shared
            values.append(
                self._guard(func, source, **kwargs) if plan.with_self else self._guard(func, **kwargs)
            )
        return values

    @staticmethod
    def _guard(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as error:
            return error

    # --- completion ------------------------------------------------------------------------

    def _complete_field(
        self,
        parent_type: GraphQLObjectType,
        response_name: str,
        details: Any,
        return_type: GraphQLOutputType,
        values: list[Any],
        paths: PathOf,
        results: list[dict[str, Any]],
        slots: list[list[Slot]],
    ) -> Any:
        typename = parent_type.name
        positions: list[Slot] = [
            (result, response_name, not is_non_null_type(return_type), owner)
            for result, owner in zip(results, slots, strict=True)
        ]
        for result in results:
            result[response_name] = None
        return self._complete(
            return_type, details, values, lambda i: Path(paths(i), response_name, typename), positions
        )

    def _complete(
        self,
        return_type: GraphQLOutputType,
        details: Any,
        values: list[Any],
        path_of: Callable[[int], Path],
        positions: list[Slot],
    ) -> Any:
        """Complete ``values`` (one per position) of ``return_type``; returns an awaitable
        when sub-selections remain, else None. Values are written into their positions."""
        inner: Any = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        live: list[int] = []
        for i, value in enumerate(values):
            if isinstance(value, BaseException):
                if not isinstance(value, Exception):
                    raise value  # cancellation and exits are not field errors
                self._field_error(value, details, path_of(i), positions[i])
            elif value is None:
                if not positions[i][NULLABLE]:
                    message = f"Cannot return null for non-nullable field {self._field_name(details)}."
                    self._field_error(TypeError(message), details, path_of(i), positions[i])
            else:
                live.append(i)
        if not live:
            return None
        if is_leaf_type(inner):
            self._complete_leaves(inner, details, values, live, path_of, positions)
            return None
        if is_list_type(inner):
            return self._complete_lists(inner, details, values, live, path_of, positions)
        return self._complete_objects(inner, details, values, live, path_of, positions)

    def _complete_leaves(
        self,
        leaf: GraphQLLeafType,
        details: Any,
        values: list[Any],
        live: list[int],
        path_of: Callable[[int], Path],
        positions: list[Slot],
    ) -> None:
        serialize = self._serializers.get(id(leaf))
        if serialize is None:
            serialize = self._serializers[id(leaf)] = _fast_serializer(leaf)
        for i in live:
            slot = positions[i]
            try:
                slot[CONTAINER][slot[KEY]] = serialize(values[i])
            except Exception as error:
                self._field_error(error, details, path_of(i), slot)

    def _complete_lists(
        self,
        list_type: GraphQLList[Any],
        details: Any,
        values: list[Any],
        live: list[int],
        path_of: Callable[[int], Path],
        positions: list[Slot],
    ) -> Any:
        item_type = list_type.of_type
        item_nullable = not is_non_null_type(item_type)
        inner_item = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if is_leaf_type(inner_item):
            live = self._complete_leaf_lists(inner_item, values, live, positions)
            if not live:
                return None
        items: list[Any] = []
        item_positions: list[Slot] = []
        item_paths: list[tuple[int, int]] = []
        for i in live:
            value = values[i]
            slot = positions[i]
            if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
                error = GraphQLError(
                    f"Expected Iterable, but did not find one for field '{self._field_name(details)}'."
                )
                self._field_error(error, details, path_of(i), slot)
                continue
            container = list(value)
            out: list[Any] = [None] * len(container)
            slot[CONTAINER][slot[KEY]] = out
            parents = [slot]
            for index, item in enumerate(container):
                items.append(item)
                item_positions.append((out, index, item_nullable, parents))
                item_paths.append((i, index))
        if not items:
            return None
        # List items may themselves be awaitables (e.g. a list of loader futures); the items'
        # types are looked at first (one pass in C): a page's nodes are all of one plain type.
        is_awaitable = self._maybe_awaitable
        if not set(map(type, items)) <= self._plain and any(is_awaitable(item) for item in items):
            return self._await_items(item_type, details, items, item_paths, path_of, item_positions)
        return self._complete(
            item_type,
            details,
            items,
            lambda k: Path(path_of(item_paths[k][0]), item_paths[k][1], None),
            item_positions,
        )

    def _complete_leaf_lists(
        self, leaf: GraphQLLeafType, values: list[Any], live: list[int], positions: list[Slot]
    ) -> list[int]:
        """Lists of scalars in one loop each (a set's table paths, a curve's flags); returns
        the positions left for the general path: anything with a null, an awaitable or a
        value the serializer refuses, whose error must be located item by item."""
        serialize = self._serializers.get(id(leaf))
        if serialize is None:
            serialize = self._serializers[id(leaf)] = _fast_serializer(leaf)
        is_awaitable = self._maybe_awaitable
        rest: list[int] = []
        for i in live:
            value = values[i]
            if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
                rest.append(i)
                continue
            container = values[i] = list(value)  # an iterator is read once, whichever path follows
            try:
                if any(v is None or is_awaitable(v) for v in container):
                    rest.append(i)
                    continue
                out = [serialize(v) for v in container]
            except Exception:
                rest.append(i)
                continue
            slot = positions[i]
            slot[CONTAINER][slot[KEY]] = out
        return rest

    async def _await_items(
        self,
        item_type: Any,
        details: Any,
        items: list[Any],
        item_paths: list[tuple[int, int]],
        path_of: Callable[[int], Path],
        positions: list[Slot],
    ) -> None:
        awaited = await _settle([item if self._maybe_awaitable(item) else _ready(item) for item in items])
        nested = self._complete(
            item_type,
            details,
            list(awaited),
            lambda k: Path(path_of(item_paths[k][0]), item_paths[k][1], None),
            positions,
        )
        if nested is not None:
            await nested

    def _complete_objects(
        self,
        return_type: Any,
        details: Any,
        values: list[Any],
        live: list[int],
        path_of: Callable[[int], Path],
        positions: list[Slot],
    ) -> Any:
        by_type: dict[str, tuple[GraphQLObjectType, list[int]]] = {}
        if is_object_type(return_type):
            by_type[return_type.name] = (return_type, live)
        elif is_abstract_type(return_type):
            for i in live:
                try:
                    runtime = self._runtime_type(return_type, details, values[i], path_of(i))
                except Exception as error:
                    self._field_error(error, details, path_of(i), positions[i])
                    continue
                by_type.setdefault(runtime.name, (runtime, []))[1].append(i)
        levels = [
            self._object_level(object_type, details, values, indices, path_of, positions)
            for object_type, indices in by_type.values()
        ]
        if len(levels) == 1:
            return levels[0]
        return asyncio.gather(*levels) if levels else None

    def _field_name(self, details: Any) -> str:
        _, parent_type = self._fields[id(details)]
        return f"{parent_type.name}.{details[0].node.name.value}"

    def _runtime_type(self, abstract: Any, details: Any, value: Any, path: Path) -> GraphQLObjectType:
        field_def, parent_type = self._fields[id(details)]
        info = self.build_resolve_info(field_def, [d.node for d in details], parent_type, path)
        resolve_type = abstract.resolve_type or self.type_resolver
        runtime = resolve_type(value, info, abstract)
        if self.is_awaitable(runtime):
            raise GraphQLError("asynchronous type resolution is not supported by the breadth-first executor")
        return self.ensure_valid_runtime_type(runtime, abstract, details, info, value)

    async def _object_level(
        self,
        object_type: GraphQLObjectType,
        details: Any,
        values: list[Any],
        indices: list[int],
        path_of: Callable[[int], Path],
        positions: list[Slot],
    ) -> None:
        # The same object met at several positions (an image under many measurements)
        # is completed once; every position shares its result.
        unique: dict[int, int] = {}
        objects: list[Any] = []
        firsts: list[int] = []  # an index where each unique object occurs, for its path
        slots: list[list[Slot]] = []
        results: list[dict[str, Any]] = []
        # The response keys in document order from the start: fields completed in one loop
        # (``_attribute_leaves``) and the others, later, fill their places.
        grouped = self.collect_subfields(object_type, details)[0]
        template = dict.fromkeys(grouped)  # copied per object: a copy is cheaper than a fromkeys
        for i in indices:
            value = values[i]
            u = unique.get(id(value))
            if u is None:
                u = unique[id(value)] = len(objects)
                objects.append(value)
                firsts.append(i)
                slots.append([])
                results.append(template.copy())
            slot = positions[i]
            slot[CONTAINER][slot[KEY]] = results[u]
            slots[u].append(slot)
        await self._execute_level(object_type, objects, lambda u: path_of(firsts[u]), grouped, results, slots)

    # --- errors ------------------------------------------------------------------------------

    def _field_error(self, raw: Exception, details: Any, path: Path, slot: Slot) -> None:
        error = located_error(raw, [d.node for d in details], path.as_list())
        # Like graphql-core, the error is recorded at the position actually nulled, and
        # errors below an already-nulled position are dropped.
        nulled = self._null_out(slot, path)
        self.collected_errors.add(error, nulled)

    def _null_out(self, slot: Slot, path: Path | None) -> Path | None:
        """Null the value at ``slot``; if that position is non-null, null its parent instead.

        Returns the path of the position nulled (None: the whole response)."""
        if slot[NULLABLE]:
            slot[CONTAINER][slot[KEY]] = None
            return path
        if slot[CONTAINER] is None or path is None:
            self._root_nulled = True
            return None
        nulled: Path | None = None
        for index, parent in enumerate(slot[PARENTS]):
            # A shared object has several positions; the reported path is the first one's.
            position = self._null_out(parent, path.prev)
            if index == 0:
                nulled = position
        return nulled


_CACHES = "_breadth_first_caches"
Caches = tuple[dict[int, _Plan], dict[int, Callable[[Any], Any]], set[type]]


def _schema_caches(schema: Any) -> Caches:
    caches: Caches | None = getattr(schema, _CACHES, None)
    if caches is None:
        caches = ({}, {}, set(_PLAIN))
        setattr(schema, _CACHES, caches)
    return caches


def _no_path(_: int) -> None:
    return None


async def _ready(value: Any) -> Any:
    return value


def _outcome(future: asyncio.Future[Any]) -> Any:
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


async def _settle(awaitables: list[Any]) -> list[Any]:
    """Their results (an exception where one failed), as ``gather(..., return_exceptions=True)``.

    Futures already done (loader keys primed or cached earlier in the request) are read
    without a loop turn; a single awaitable is awaited in place, with no task around it.
    """
    if all(isinstance(a, asyncio.Future) and a.done() for a in awaitables):
        return [_outcome(a) for a in awaitables]
    if len(awaitables) == 1:
        try:
            return [await awaitables[0]]
        except Exception as error:
            return [error]
    return list(await asyncio.gather(*awaitables, return_exceptions=True))
