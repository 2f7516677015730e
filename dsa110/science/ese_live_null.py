"""The live null table of the ESE score (``dsa110.science.ese_far``, "live").

Written by ``bench/ese_null.py --live --write``; do not edit by hand, re-run it:

    python bench/ese_null.py --live --sources 200 --seed 90201 --workers 2 --write

Detector ese-drw-3.3, the job's ``LIVE_PARAMS`` (score floor 1, one-look cap 0.001);
chunks of 500 source-years at seeds 90201, 91201, ...; full tests per source year=10.28;
1 of 200 source-years had a candidate at some look; 27 s CPU, 50 s wall with 2 workers.
Rows: (score, FAP per steady source-year of a live candidate of any kind at
least as extreme), score ascending; a row at 0.5 / N is a bound (no null
source-year reached it).
"""

LIVE_NULL_SOURCE_YEARS = 200
LIVE_NULL_TABLES: dict[str, tuple[tuple[float, float], ...]] = {
    "dip": (
        (1.0, 0.0025),
        (1.1, 0.0025),
        (1.2, 0.0025),
        (1.3, 0.00249),
        (1.4, 0.00249),
        (1.5, 0.00249),
        (1.6, 0.00249),
        (1.7, 0.00248),
        (1.8, 0.00248),
        (1.9, 0.00248),
        (2.0, 0.00248),
        (2.2, 0.00247),
        (2.4, 0.00247),
        (2.7, 0.00247),
        (3.0, 0.00247),
        (3.5, 0.00246),
        (4.0, 0.00246),
        (5.0, 0.00246),
        (7.0, 0.00246),
    ),
    "ongoing": (
        (1.0, 0.0025),
        (1.1, 0.0025),
        (1.2, 0.0025),
        (1.3, 0.00249),
        (1.4, 0.00249),
        (1.5, 0.00249),
        (1.6, 0.00249),
        (1.7, 0.00248),
        (1.8, 0.00248),
        (1.9, 0.00248),
        (2.0, 0.00248),
        (2.2, 0.00247),
        (2.4, 0.00247),
        (2.7, 0.00247),
        (3.0, 0.00247),
        (3.5, 0.00246),
        (4.0, 0.00246),
        (5.0, 0.00246),
        (7.0, 0.00246),
    ),
    "egress": (
        (1.0, 0.005),
        (1.1, 0.005),
        (1.2, 0.0025),
        (1.3, 0.0025),
        (1.4, 0.0025),
        (1.5, 0.00249),
        (1.6, 0.00249),
        (1.7, 0.00249),
        (1.8, 0.00249),
        (1.9, 0.00248),
        (2.0, 0.00248),
        (2.2, 0.00248),
        (2.4, 0.00248),
        (2.7, 0.00247),
        (3.0, 0.00247),
        (3.5, 0.00247),
        (4.0, 0.00247),
        (5.0, 0.00246),
        (7.0, 0.00246),
    ),
}
