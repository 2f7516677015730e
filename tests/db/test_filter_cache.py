"""Filter conditions kept by value: equal values share them, different values never do."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import sqlite

from dsa110.db import filter_cache
from dsa110.db.enums import CandidateStatus
from dsa110.db.filters import ConeFilter, EseCandidateFilter, SourceFilter
from dsa110.errors import InputError


def sql(conditions: list) -> list[str]:
    dialect = sqlite.dialect()
    return [str(c.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for c in conditions]


def test_equal_values_share_their_conditions() -> None:
    first, key = filter_cache.conditions_of(
        EseCandidateFilter(statuses=[CandidateStatus.ACTIVE], min_score=0.5)
    )
    again, same = filter_cache.conditions_of(
        EseCandidateFilter(statuses=[CandidateStatus.ACTIVE], min_score=0.5)
    )
    assert key is not None and key == same and again is first
    assert sql(first) == sql(
        EseCandidateFilter(statuses=[CandidateStatus.ACTIVE], min_score=0.5).conditions()
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            EseCandidateFilter(statuses=[CandidateStatus.ACTIVE]),
            EseCandidateFilter(statuses=[CandidateStatus.DISMISSED]),
        ),
        (EseCandidateFilter(min_score=1.0), EseCandidateFilter(min_significance=1.0)),
        (EseCandidateFilter(statuses=[]), EseCandidateFilter()),
        (
            SourceFilter(cone=ConeFilter(ra_deg=10.0, dec_deg=20.0, radius_arcsec=30.0)),
            SourceFilter(cone=ConeFilter(ra_deg=10.0, dec_deg=20.0, radius_arcsec=31.0)),
        ),
    ],
)
def test_different_values_never_share(a: object, b: object) -> None:
    (ca, ka), (cb, kb) = filter_cache.conditions_of(a), filter_cache.conditions_of(b)  # type: ignore[arg-type]
    assert ka != kb
    assert sql(ca) == sql(a.conditions()) and sql(cb) == sql(b.conditions())  # type: ignore[attr-defined]
    assert sql(ca) != sql(cb)


def test_a_refused_value_is_refused_every_time() -> None:
    bad = SourceFilter(cone=ConeFilter(ra_deg=400.0, dec_deg=0.0, radius_arcsec=10.0))
    for _ in range(2):
        with pytest.raises(InputError):
            filter_cache.conditions_of(bad)


def test_what_cannot_be_keyed_is_built_each_time() -> None:
    class Plain:
        def conditions(self) -> list:
            return []

    assert filter_cache.conditions_of(Plain()) == ([], None)
    assert filter_cache.conditions_of(None) == ([], None)


def test_kept_values_are_bounded() -> None:
    for score in range(filter_cache.SIZE + 10):
        filter_cache.conditions_of(EseCandidateFilter(min_score=float(score)))
    assert len(filter_cache._KEPT) <= filter_cache.SIZE
