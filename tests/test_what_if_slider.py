"""The Bridge page's what-if slider (charts.what_if_slider), worked out by hand: bounds on the
step grid counted from the starting value, with the step's decimals, so the browser can reach
both ends (a bound off the grid was rounded below the minimum and the server ignored it)."""
from __future__ import annotations

import pytest

from pipelines import charts


@pytest.mark.parametrize("metric,current,expected", [
    # TTA p50 8.3041 s: ± 4 s; 4 / 100 = 0.04 → the next 1-2-5 step 0.05; start 166 steps = 8.30;
    # ends ceil(86.0) = 86 steps = 4.30 and floor(246.0) = 246 steps = 12.30
    ("tta_p50_s", 8.3041, {"min": 4.3, "max": 12.3, "value": 8.3, "step": 0.05, "format": "%.2f s"}),
    # TCR 74.64%: ± 10 points in steps of 0.1; start 74.6 (not 74.64: the ends read 64.6 and 84.6)
    ("tcr", 0.7464, {"min": 64.6, "max": 84.6, "value": 74.6, "step": 0.1, "format": "%.1f%%"}),
    # TCR 99.64%: capped at 100%, itself a whole step
    ("tcr", 0.9964, {"min": 89.6, "max": 100.0, "value": 99.6, "step": 0.1, "format": "%.1f%%"}),
    # TCR 3%: floored at 0%
    ("tcr", 0.03, {"min": 0.0, "max": 13.0, "value": 3.0, "step": 0.1, "format": "%.1f%%"}),
    # CPVO $0.0039: ± 50% = $0.00195; / 100 = 0.0000195 → step 0.00002; start 195 steps;
    # ends ceil(195 − 97.5) = 98 steps = $0.00196 and floor(195 + 97.5) = 292 steps = $0.00584
    ("cpvo_usd", 0.0039, {"min": 0.00196, "max": 0.00584, "value": 0.0039, "step": 0.00002,
                          "format": "$%.5f"}),
    # RΔ +9.89 pts: start 9.9, ends −0.1 and 19.9
    ("retention_delta_pts", 9.89, {"min": -0.1, "max": 19.9, "value": 9.9, "step": 0.1, "format": "%+.1f pts"}),
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
