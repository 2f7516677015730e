"""The live null table of the ESE score (``dsa110.science.ese_far``, "live").

Written by ``bench/ese_null.py --live --write``; do not edit by hand, re-run it:

    python bench/ese_null.py --live --sources 8000 --seed 201 --workers 2 --write

Detector ese-drw-3.5, the job's ``LIVE_PARAMS`` (score floor 1, one-look cap 0.001);
chunks of 500 source-years at seeds 201, 1201, ...; full tests per source year=10.23;
40 of 8000 source-years had a candidate at some look; 707 s CPU, 1011 s wall with 2 workers.
Rows: (score, FAP per steady source-year of a live candidate of any kind at
least as extreme), score ascending; a row at 0.5 / N is a bound (no null
source-year reached it).
"""

LIVE_NULL_SOURCE_YEARS = 8000
LIVE_NULL_TABLES: dict[str, tuple[tuple[float, float], ...]] = {
    "dip": (
        (1.0, 0.005),
        (1.1, 0.004995),
        (1.2, 0.00499),
        (1.3, 0.004985),
        (1.4, 0.00475),
        (1.5, 0.004625),
        (1.6, 0.004),
        (1.7, 0.002375),
        (1.8, 0.002),
        (1.9, 0.001998),
        (2.0, 0.001996),
        (2.2, 0.001375),
        (2.4, 0.000375),
        (2.7, 0.00025),
        (3.0, 0.00024975),
        (3.5, 6.25e-05),
        (4.0, 6.2438e-05),
        (5.0, 6.2375e-05),
        (7.0, 6.2313e-05),
    ),
    "ongoing": (
        (1.0, 0.002),
        (1.1, 0.00025),
        (1.2, 0.00024975),
        (1.3, 6.25e-05),
        (1.4, 6.2438e-05),
        (1.5, 6.2375e-05),
        (1.6, 6.2313e-05),
        (1.7, 6.225e-05),
        (1.8, 6.2188e-05),
        (1.9, 6.2126e-05),
        (2.0, 6.2064e-05),
        (2.2, 6.2002e-05),
        (2.4, 6.194e-05),
        (2.7, 6.1878e-05),
        (3.0, 6.1816e-05),
        (3.5, 6.1754e-05),
        (4.0, 6.1692e-05),
        (5.0, 6.1631e-05),
        (7.0, 6.1569e-05),
    ),
    "egress": (
        (1.0, 0.005),
        (1.1, 0.001375),
        (1.2, 6.25e-05),
        (1.3, 6.2438e-05),
        (1.4, 6.2375e-05),
        (1.5, 6.2313e-05),
        (1.6, 6.225e-05),
        (1.7, 6.2188e-05),
        (1.8, 6.2126e-05),
        (1.9, 6.2064e-05),
        (2.0, 6.2002e-05),
        (2.2, 6.194e-05),
        (2.4, 6.1878e-05),
        (2.7, 6.1816e-05),
        (3.0, 6.1754e-05),
        (3.5, 6.1692e-05),
        (4.0, 6.1631e-05),
        (5.0, 6.1569e-05),
        (7.0, 6.1507e-05),
    ),
}
