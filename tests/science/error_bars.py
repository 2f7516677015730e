"""Checking reported 1-sigma errors against the scatter of repeated fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def assert_errors_match_scatter(
    fits: Sequence[Any], pairs: Sequence[tuple[str, str]], factor: float = 1.6
) -> None:
    """For each (value, error) attribute pair: the mean reported error is the scatter, within ``factor``.

    With 20-40 noise realisations the sample standard deviation itself is uncertain by
    roughly 1/sqrt(2 (n - 1)), 11-16 %; a factor 1.6 catches errors wrong by the usual
    culprits (a missing sqrt, a dropped chi2 scale, a wrong Jacobian) without flaking.
    """
    for value, error in pairs:
        scatter = np.std([getattr(f, value) for f in fits], ddof=1)
        reported = np.mean([getattr(f, error) for f in fits])
        assert reported / factor < scatter < reported * factor, (value, scatter, reported)
