"""A query's objects are freed when its answer is, without the cyclic garbage collector.

Anything of a request left in a reference cycle (its context, loaders, futures, rows) waits
for a collector pass, and every pass walks all of it: the cost grows with the rows a request
reads. After a query the context must be unreachable once the caller drops it.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from schema.schema import make_context
from tests.graph.conftest import Graph

DOCUMENTS = [
    # a page joining whole rows (primes the by-key loader), a nested page, a by-key link
    """{ eseCandidates(first: 20) { totalCount nodes { candidateId status source { sourceId eta } } }
         sources(first: 5) { nodes { sourceId measurements(first: 3) { totalCount nodes { image { imageId } } } } } }""",
    "{ images(first: 30) { totalCount pageInfo { hasNextPage } nodes { imageId measurementSet { path } } } }",
    # resolvers with loaders of their own (``custom``) around a batch function
    "{ images(first: 5) { nodes { imageId localRmsRange { minJy } } } }",
    "{ dataProducts(first: 5) { nodes { dataId lineageByRelationship } } }",
    # a field error: the error holds a traceback
    "{ image(imageId: -1) { imageId } }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_a_query_leaves_no_reference_cycle(graph: Graph, document: str) -> None:
    context = make_context(graph.engine, graph.settings, identity=graph.identity)
    loaders = weakref.ref(context.loaders)
    gc.collect()
    gc.disable()
    try:
        result = await graph.schema.execute(document, context_value=context)
        assert result.data is not None or result.errors
        del context, result
        assert loaders() is None, [type(r).__name__ for r in gc.get_referrers(loaders())]
    finally:
        gc.enable()
