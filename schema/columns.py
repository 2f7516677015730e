"""Which of a table's columns a list page must read: those its document's node fields use.

A list root read every column of its table (and wrapped them all, and SQLite's datetime
columns were parsed) even when the document asks for three fields: the images list read
23 columns for the 17 the REST path shows, the sources search 29 for 16 (issue 11). Here
the node selection of a connection field is mapped to the columns it needs:

* a field without a resolver reads the attribute of its own name, a column of the row;
* a resolver field declares what it reads with ``metadata=reads("pk", "ms_pk")``;
* anything else (a resolver that declares nothing, a field that is not a column, a
  selection this look-ahead cannot follow) means every column: the answer is then what it
  was, never a missing attribute.

The rows of a pruned page are reachable only through that connection (they prime no
loader), so no other part of the document can meet an object lacking a column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from sqlalchemy import Table

READS: Final = "dsa110.reads"
"""Field metadata key: the row attributes (``pk`` for ``id``) a resolver field reads."""

_SKIP_FIELDS: Final = frozenset({"__typename"})

# (type, table name) -> GraphQL field name -> the row keys it reads (None: unknown, read all)
_FIELD_READS: dict[tuple[type, str], dict[str, frozenset[str] | None]] = {}


def reads(*attributes: str) -> dict[str, Any]:
    """``strawberry.field(metadata=reads("end_mjd", "start_mjd"))``: the resolver reads only these
    attributes of its object (row keys: ``pk`` for the table's ``id``)."""
    return {READS: frozenset(attributes)}


def row_keys(table: Table) -> frozenset[str]:
    """The keys of a row of ``table`` as the loaders build it (``id`` is ``pk``)."""
    return frozenset("pk" if c.name == "id" else c.name for c in table.c)


_BY_NAME: dict[type, dict[str, Any]] = {}


def fields_by_name(cls: type, name_of: Any) -> dict[str, Any]:
    """A strawberry type's fields by GraphQL name (made once per type)."""
    found = _BY_NAME.get(cls)
    if found is None:
        definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
        found = _BY_NAME[cls] = {name_of(f): f for f in definition.fields}
    return found


def _field_reads(cls: type, table: Table, name_of: Any) -> dict[str, frozenset[str] | None]:
    key = (cls, table.name)
    found = _FIELD_READS.get(key)
    if found is None:
        columns = row_keys(table)
        found = {}
        for field in cls.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            declared = (field.metadata or {}).get(READS)
            if field.base_resolver is None:
                needs: frozenset[str] | None = frozenset({field.python_name})
            else:
                needs = declared
            found[name_of(field)] = needs if needs is not None and needs <= columns else None
        _FIELD_READS[key] = found
    return found


def needed_columns(
    cls: type, table: Table, node_fields: Iterable[str] | None, name_of: Any
) -> frozenset[str] | None:
    """The row keys the node fields read (always with ``pk``); None: every column."""
    if node_fields is None:
        return None
    field_reads = _field_reads(cls, table, name_of)
    needed = {"pk"}
    for name in node_fields:
        if name in _SKIP_FIELDS:
            continue
        needs = field_reads.get(name)
        if needs is None:
            return None
        needed |= needs
    return frozenset(needed)


def node_fields(
    field_nodes: Iterable[FieldNode], fragments: Mapping[str, Any], variables: Mapping[str, Any]
) -> set[str] | None:
    """Names of the fields a connection selects on its nodes (``nodes { ... }`` and
    ``edges { node { ... } }``, through fragments); None when that cannot be told."""
    holders = node_holders(field_nodes, fragments, variables)
    if holders is None:
        return None
    names: set[str] = set()
    for holder in holders:
        found = node_fields_of(holder, fragments, variables)
        if found is None:
            return None
        names |= found
    return names


def node_holders(
    field_nodes: Iterable[FieldNode], fragments: Mapping[str, Any], variables: Mapping[str, Any]
) -> list[FieldNode] | None:
    """The fields whose selections are a connection's nodes: its ``nodes`` and its edges'
    ``node``, through fragments; None when that cannot be told."""
    holders: list[FieldNode] = []
    for node in field_nodes:
        for item in selection_fields(node.selection_set, fragments, variables):
            if item is None:
                return None
            if item.name.value == "nodes":
                holders.append(item)
            elif item.name.value == "edges":
                for inner in selection_fields(item.selection_set, fragments, variables):
                    if inner is None:
                        return None
                    if inner.name.value == "node":
                        holders.append(inner)
    return holders


def node_fields_of(
    holder: FieldNode, fragments: Mapping[str, Any], variables: Mapping[str, Any]
) -> set[str] | None:
    """Names of the fields selected on ``holder`` (None when that cannot be told)."""
    names: set[str] = set()
    for field in selection_fields(holder.selection_set, fragments, variables):
        if field is None:
            return None
        names.add(field.name.value)
    return names


def selection_fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, Any],
    variables: Mapping[str, Any],
    depth: int = 0,
) -> list[FieldNode | None]:
    """The fields of a selection set through fragments, those skipped by ``@include``/``@skip``
    left out; a None item stands for what could not be followed."""
    if selection_set is None:
        return []
    if depth > 16:
        return [None]
    out: list[FieldNode | None] = []
    for selection in selection_set.selections:
        included = _included(selection, variables)
        if included is None:
            return [None]
        if not included:
            continue
        if isinstance(selection, FieldNode):
            out.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            out.extend(selection_fields(selection.selection_set, fragments, variables, depth + 1))
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                return [None]
            out.extend(selection_fields(fragment.selection_set, fragments, variables, depth + 1))
        else:
            return [None]
    return out


def _included(selection: Any, variables: Mapping[str, Any]) -> bool | None:
    """Whether ``@include``/``@skip`` keep the selection (None: a directive not understood)."""
    keep = True
    for directive in selection.directives or ():
        name = directive.name.value
        if name not in ("include", "skip"):
            continue  # other directives do not remove the field
        condition = _condition(directive, variables)
        if condition is None:
            return None
        if (name == "include" and not condition) or (name == "skip" and condition):
            keep = False
    return keep


def _condition(directive: Any, variables: Mapping[str, Any]) -> bool | None:
    for argument in directive.arguments or ():
        if argument.name.value != "if":
            continue
        value = argument.value
        if value.kind == "boolean_value":
            return bool(value.value)
        if value.kind == "variable":
            found = variables.get(value.name.value)
            return found if isinstance(found, bool) else None
    return None
