"""The Bridge page's what-if slider (charts.what_if_slider), worked out by hand: bounds on the
step grid counted from the starting value, with the step's decimals, so the browser can reach
both ends (a bound off the grid was rounded below the minimum and the server ignored it)."""
from __future__ import annotations

import pytest

from pipelines import charts


@pytest.mark.parametrize("metric,current,expected", [
    # TTA p50 8.3041 s: ± 4 s in 100 steps of 0.04; 3 decimals show a 0.04 step and the value
    ("tta_p50_s", 8.3041, {"min": 4.304, "max": 12.304, "value": 8.304, "step": 0.04, "format": "%.3f s"}),
    # TCR 74.64%: ± 10 points in steps of 0.1
    ("tcr", 0.7464, {"min": 64.64, "max": 84.64, "value": 74.64, "step": 0.1, "format": "%.2f%%"}),
    # TCR 99.64%: capped at 100%, the top bound the last step under it (99.64 + 3 × 0.1)
    ("tcr", 0.9964, {"min": 89.64, "max": 99.94, "value": 99.64, "step": 0.1, "format": "%.2f%%"}),
    # TCR 3%: floored at 0%, the bottom bound the last step above it (3.00 − 30 × 0.1)
    ("tcr", 0.03, {"min": 0.0, "max": 13.0, "value": 3.0, "step": 0.1, "format": "%.2f%%"}),
    # CPVO $0.0039: ± 50% = $0.00195 in steps of 0.0000195 → 2 significant digits: 0.000019
    # (102 steps fit under $0.00195; floor(0.00195 / 0.000019) = 102)
    ("cpvo_usd", 0.0039, {"min": 0.001962, "max": 0.005838, "value": 0.0039, "step": 0.000019,
                          "format": "$%.6f"}),
    ("retention_delta_pts", 9.89, {"min": -0.11, "max": 19.89, "value": 9.89, "step": 0.1, "format": "%+.2f pts"}),
])
def test_slider_by_hand(metric, current, expected):
    got = charts.what_if_slider(metric, current)
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert got[k] == (pytest.approx(v, abs=1e-12) if isinstance(v, float) else v), k


@pytest.mark.parametrize("metric,current", [("tta_p50_s", 8.3041), ("hitl_per_100", 6.9137), ("tcr", 0.74638),
                                            ("cpvo_usd", 0.0039123), ("hr", 0.0314468)])
def test_both_ends_are_whole_steps_from_the_start(metric, current):
    sl = charts.what_if_slider(metric, current)
    for end in (sl["min"], sl["max"]):
        steps = (end - sl["value"]) / sl["step"]
        assert steps == pytest.approx(round(steps), abs=1e-6), (end, steps)
        assert round(end, 9) == end  # no float dust beyond the shown decimals
