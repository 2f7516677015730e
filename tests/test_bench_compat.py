"""`python -m bench.compat` runs to its end: its one anonymous client is not rate limited.

A run makes 2 x (repeat + 5) requests on each of its paths (1,640 by default) within about
a minute, past the default 1,200 anonymous requests a minute; with the limiter on, the
third path was refused (429 ``RATE_LIMITED``) and the run ended there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.compat import bench_settings, scenarios
from dsa110.settings import Settings


def test_the_default_limit_is_below_what_a_run_sends(tmp_path: Path) -> None:
    defaults = Settings.from_env(data_dir=tmp_path)
    requests = 2 * (200 + 5) * len(scenarios(defaults))
    assert 0 < defaults.anonymous_rate_limit_per_minute < requests


def test_bench_settings_turn_the_rate_limits_off_whatever_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSA110_RATE_LIMIT_PER_MINUTE", "5")
    monkeypatch.setenv("DSA110_ANONYMOUS_RATE_LIMIT_PER_MINUTE", "5")
    settings = bench_settings(tmp_path, None)
    assert settings.rate_limit_per_minute == 0
    assert settings.anonymous_rate_limit_per_minute == 0
    assert settings.data_dir == tmp_path
