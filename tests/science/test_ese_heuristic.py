"""The heuristic ESE score: each term by hand, and the legacy defects it does not copy."""

from __future__ import annotations

import pytest

from dsa110.science.ese_heuristic import ese_heuristic_score


def test_every_term_at_its_full_weight():
    # V 0.25 > 0.2 -> 0.4; chi2_nu 3.5 > 3 -> 0.3; an active candidate lasting
    # 60030 - 60000 = 30 d, inside 14-180 d -> 0.2. Total 0.9, the most there is.
    assert ese_heuristic_score(0.25, 3.5, [("active", 60000.0, 60030.0)], n_epochs=40) == 0.9


def test_the_half_weights():
    # V 0.15 in (0.1, 0.2] -> 0.2; chi2_nu 2.5 in (2, 3] -> 0.15; no candidate -> 0. Total 0.35.
    assert ese_heuristic_score(0.15, 2.5, [], n_epochs=40) == 0.35


def test_a_steady_source_scores_zero_where_the_legacy_gave_it_0_6():
    # Steady within its errors: V 0.05, chi2_nu = eta = 1.0, watched for 30 days.
    # Legacy: eta 1.0 > 0.1 -> +0.4, and the 30-day light-curve span -> +0.2: 0.6 for a
    # source doing nothing. Here: V <= 0.1 -> 0, chi2_nu <= 2 -> 0, no candidate -> 0.
    assert ese_heuristic_score(0.05, 1.0, [], n_epochs=30) == 0.0


@pytest.mark.parametrize(
    ("candidate", "points"),
    [
        (("investigated", 100.0, 114.0), 0.2),  # exactly 14 d: inside
        (("resolved", 100.0, 280.0), 0.2),  # exactly 180 d, investigated and not rejected
        (("active", 100.0, 113.0), 0.0),  # 13 d: too short for an ESE
        (("active", 100.0, 290.0), 0.0),  # 190 d: too long
        (("false_positive", 100.0, 130.0), 0.0),  # a person rejected it
        (("dismissed", 100.0, 130.0), 0.0),
    ],
)
def test_the_timescale_term_is_on_the_event_window(candidate, points):
    assert ese_heuristic_score(0.0, 0.0, [candidate], n_epochs=25) == points


def test_undefined_inputs():
    # V undefined (mean flux <= 0) scores 0 for its term; chi2_nu 4 -> 0.3.
    assert ese_heuristic_score(None, 4.0, [], n_epochs=5) == 0.3
    assert ese_heuristic_score(None, None, [], n_epochs=0) is None
