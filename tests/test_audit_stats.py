"""The audit's statistics against independent computations (numpy, scipy, statsmodels)
on small fixtures: PSI, ECE, Cohen's kappa, the OLS slope and its interval, the
windows, and the alignment / gaming rules on hand-made inputs (SPEC §6)."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

from pipelines import audit


# ----------------------------------------------------------------------------- independent
def psi_reference(ref_shares, cur_shares, floor=1e-4) -> float:
    r = np.maximum(np.asarray(ref_shares, float), floor)
    a = np.maximum(np.asarray(cur_shares, float), floor)
    return float(np.sum((a - r) * np.log(a / r)))


def psi_numeric_numpy(ref: np.ndarray, cur: np.ndarray) -> float:
    edges = np.quantile(ref, np.arange(1, 10) / 10)  # linear interpolation (numpy default)
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=10) / len(ref)
    a = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=10) / len(cur)
    return psi_reference(r, a)


def ece_numpy(conf: np.ndarray, correct: np.ndarray) -> float:
    b = np.clip(np.floor(conf * 10).astype(int), 0, 9)
    total = 0.0
    for k in range(10):
        m = b == k
        if m.any():
            total += m.sum() / len(conf) * abs(correct[m].mean() - conf[m].mean())
    return total


# ----------------------------------------------------------------------------- PSI
def test_psi_textbook_example():
    # shares 50/50 -> 25/75: (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    value, rs, as_, contrib = audit.psi([50, 50], [25, 75])
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert value == pytest.approx(expected, rel=1e-12)
    assert sum(contrib) == pytest.approx(value)
    assert audit.psi_band(value) == "major"
    assert audit.psi_band(0.0999) == "stable" and audit.psi_band(0.1) == "moderate"
    assert audit.psi_band(0.2499) == "moderate" and audit.psi_band(0.25) == "major"


def test_psi_floor_for_empty_bins():
    # a category absent from the reference: its share is floored at 1e-4, not dropped
    value, rs, as_, _ = audit.psi([100, 0], [90, 10])
    assert rs[1] == 1e-4
    assert value == pytest.approx(psi_reference([1.0, 0.0], [0.9, 0.1]), rel=1e-12)
    assert audit.psi([0, 0], [1, 2])[0] is None


def test_psi_numeric_bins_match_numpy():
    rng = np.random.default_rng(3)
    ref = rng.lognormal(6.5, 0.6, 4000).round()
    cur = rng.lognormal(6.7, 0.6, 3000).round()
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    # audit.py bins: (-inf, e1], (e1, e2], ..., (e9, inf) -- counted here like the SQL does
    rc = [int(np.sum([sum(e < v for e in edges) == i for v in ref])) for i in range(10)]
    ac = [int(np.sum([sum(e < v for e in edges) == i for v in cur])) for i in range(10)]
    assert audit.psi(rc, ac)[0] == pytest.approx(psi_numeric_numpy(ref, cur), rel=1e-10)


# ----------------------------------------------------------------------------- ECE
def _ece_bins(conf, correct):
    edges = [k / 10 for k in range(1, 10)]
    bins = []
    for b in range(10):
        m = np.array([sum(e <= c for e in edges) == b for c in conf])
        if m.any():
            bins.append({"n": int(m.sum()), "correct": int(correct[m].sum()), "sum_confidence": float(conf[m].sum())})
    return bins


def test_ece_matches_numpy_and_hand_value():
    conf = np.array([0.05, 0.15, 0.3, 0.35, 0.7, 0.72, 0.95, 1.0, 1.0, 0.999])
    correct = np.array([0, 0, 1, 0, 1, 1, 1, 1, 0, 1])
    got = audit.ece(_ece_bins(conf, correct))
    assert got == pytest.approx(ece_numpy(conf, correct), rel=1e-12)
    # by hand: bins 0:{.05;0} 1:{.15;0} 3:{.3,.35;1,0} 7:{.7,.72;1,1} 9:{.95,1,1,.999;1,1,0,1}
    hand = (0.1 * 0.05 + 0.1 * 0.15 + 0.2 * abs(0.5 - 0.325) + 0.2 * abs(1 - 0.71)
            + 0.4 * abs(0.75 - (0.95 + 1 + 1 + 0.999) / 4))
    assert got == pytest.approx(hand, rel=1e-12)


def test_ece_random_fixture():
    rng = np.random.default_rng(11)
    conf = rng.beta(8, 2, 5000)
    correct = (rng.random(5000) < conf ** 1.5).astype(int)
    assert audit.ece(_ece_bins(conf, correct)) == pytest.approx(ece_numpy(conf, correct), rel=1e-10)
    assert audit.ece([]) is None


# ----------------------------------------------------------------------------- kappa
@pytest.mark.parametrize("table", [[[40, 5], [10, 45]], [[900, 3], [12, 85]], [[20, 20], [20, 20]], [[5, 0], [0, 7]]])
def test_cohen_kappa_matches_statsmodels(table):
    got = audit.cohen_kappa(table)
    ref = sm_kappa(np.asarray(table, float))
    assert got["kappa"] == pytest.approx(ref.kappa, abs=1e-12)
    assert got["agreement"] == pytest.approx(np.trace(table) / np.sum(table), abs=1e-12)


def test_cohen_kappa_degenerate():
    assert audit.cohen_kappa([[10, 0], [0, 0]])["kappa"] is None  # one class only: undefined
    assert audit.cohen_kappa([[0, 0], [0, 0]])["n"] == 0


# ----------------------------------------------------------------------------- OLS
def test_ols_slope_and_interval_match_statsmodels():
    rng = np.random.default_rng(5)
    x = np.arange(8, dtype=float)
    y = 0.82 - 0.02 * x + rng.normal(0, 0.01, 8)
    got = audit.ols(x, y)
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    lo, hi = fit.conf_int(alpha=0.05)[1]
    assert got["slope"] == pytest.approx(fit.params[1], rel=1e-10)
    assert got["intercept"] == pytest.approx(fit.params[0], rel=1e-10)
    assert got["se"] == pytest.approx(fit.bse[1], rel=1e-10)
    assert got["ci_low"] == pytest.approx(lo, rel=1e-10)
    assert got["ci_high"] == pytest.approx(hi, rel=1e-10)
    assert got["r"] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-10)


def test_level_shift_by_hand_and_against_statsmodels():
    # a clean step: 5, 5 then 9 x 4 (x = 0..5): the line + step fits exactly at the split after
    # two weeks; the runs' means are 5 and 9, flat since
    sh = audit.level_shift(range(6), [5, 5, 9, 9, 9, 9])
    assert (sh["index"], sh["before"], sh["after"]) == (2, 5.0, 9.0)
    assert sh["step"] == pytest.approx(4.0) and sh["p_value"] == 0.0 and sh["since"]["slope"] == pytest.approx(0.0)
    # a straight line (with or without noise) and noise around a level hold no step
    assert audit.level_shift(range(8), [1, 2, 3, 4, 5, 6, 7, 8]) is None
    assert audit.level_shift(range(8), [1, 2.2, 2.9, 4.1, 5, 6.2, 6.8, 8.0]) is None
    assert audit.level_shift(range(8), [5, 5.1, 4.9, 5.05, 5, 4.95, 5.1, 5.0]) is None
    assert audit.level_shift(range(3), [1, 5, 5]) is None  # too short to tell
    # a noisy step (the demo's HitL-F shape): statsmodels' F-test of the line nested in line +
    # step at the chosen split gives the same p-value, which must beat 0.05 / 5 splits
    rng = np.random.default_rng(3)
    x = np.arange(8, dtype=float)
    y = np.where(x >= 2, 8.9, 5.3) + rng.normal(0, 0.15, 8)
    sh = audit.level_shift(x, y)
    assert sh["index"] == 2
    step = (x >= 2).astype(float)
    full = sm.OLS(y, np.column_stack([np.ones(8), x, step])).fit()
    line = sm.OLS(y, sm.add_constant(x)).fit()
    f_value, p_value, _ = full.compare_f_test(line)
    assert sh["p_value"] == pytest.approx(p_value, rel=1e-9) and p_value < 0.05 / 5
    assert sh["step"] == pytest.approx(full.params[2], rel=1e-9)
    assert (sh["before"], sh["after"]) == (pytest.approx(y[:2].mean()), pytest.approx(y[2:].mean()))
    since = sm.OLS(y[2:], sm.add_constant(x[2:])).fit()
    assert sh["since"]["slope"] == pytest.approx(since.params[1], rel=1e-9)
    assert (sh["since"]["ci_low"], sh["since"]["ci_high"]) == tuple(pytest.approx(v, rel=1e-9)
                                                                    for v in since.conf_int(alpha=0.05)[1])


def test_decay_reads_a_step_by_its_fitted_sign_and_needs_weeks_after_it():
    # the reviewer's case: TCR declines six weeks, then steps up (toward green): not a step
    # "toward red"; and a step two weeks before the end says nothing about a trend since
    start = dt.date(2026, 8, 3)
    w = {"window": {"start": start, "end": start + dt.timedelta(days=55)}}

    def weeks(vals):
        return [{"period_start": start + dt.timedelta(days=7 * i), **{m: None for m in audit.config.METRICS},
                 "tcr": v} for i, v in enumerate(vals)]
    up = audit.check_decay(weeks([0.95, 0.94, 0.93, 0.92, 0.91, 0.90, 0.95, 0.95]), w, 0.05, 3)["tcr"]
    sh = up["level_shift"]
    assert sh and sh["step"] > 0 and not sh["toward_red"] and sh["since_trend"] == "unknown"
    # the step after week 2, then six flat weeks: toward red, flat since (a 2-point "since" was
    # called flat before)
    down = audit.check_decay(weeks([0.82, 0.83, 0.67, 0.671, 0.669, 0.672, 0.668, 0.67]), w, 0.05, 3)["tcr"]
    assert down["level_shift"]["toward_red"] and down["level_shift"]["since_trend"] == "flat"
    assert down["level_shift"]["week_start"] == "2026-08-17"
    assert audit._since_trend({"n": 3, "slope": 0.0, "ci_low": -1.0, "ci_high": 1.0}, "higher") == "unknown"
    assert audit._since_trend({"n": 4, "slope": -0.02, "ci_low": -0.03, "ci_high": -0.01}, "higher") == "worse"
    assert audit._since_trend({"n": 4, "slope": -0.02, "ci_low": -0.03, "ci_high": -0.01}, "lower") == "better"


def test_ols_missing_and_short():
    got = audit.ols([0, 1, 2, 3], [1.0, None, 3.0, 4.0])
    fit = sm.OLS(np.array([1.0, 3, 4]), sm.add_constant(np.array([0.0, 2, 3]))).fit()
    assert got["n"] == 3 and got["slope"] == pytest.approx(fit.params[1])
    two = audit.ols([0, 1], [1, 2])
    assert two["slope"] == pytest.approx(1) and two["ci_low"] is None
    assert audit.ols([1, 1, 1], [1, 2, 3])["slope"] is None


# ----------------------------------------------------------------------------- windows
@pytest.mark.parametrize("as_of, start, end", [
    (dt.date(2026, 10, 1), dt.date(2026, 8, 3), dt.date(2026, 9, 27)),   # Thursday: its week is not full
    (dt.date(2026, 9, 28), dt.date(2026, 8, 3), dt.date(2026, 9, 27)),   # Monday: the week before is full
    (dt.date(2026, 9, 27), dt.date(2026, 7, 27), dt.date(2026, 9, 20)),  # Sunday: its own week is not "before"
])
def test_windows(as_of, start, end):
    w = audit.windows(as_of)
    assert (w["window"]["start"], w["window"]["end"]) == (start, end)
    assert w["reference"]["end"] == start - dt.timedelta(days=1)
    assert w["reference"]["start"] == start - dt.timedelta(weeks=8)
    assert w["window"]["start"].isoweekday() == 1 and w["window"]["end"].isoweekday() == 7


# ----------------------------------------------------------------------------- rules
def _weekly(values, start=dt.date(2026, 1, 5)):
    return [{"period_start": start + dt.timedelta(weeks=i), "tcr": v} for i, v in enumerate(values)]


def _counters(behavior, start=dt.date(2026, 1, 5)):
    return [{"week_start": start + dt.timedelta(weeks=i), "interactions": 1000, "ai_user_tickets": b}
            for i, b in enumerate(behavior)]


CONTRACT = {"north_star": "tcr", "behavior": {"name": "contacts", "expected_sign": -1}}
AUDIT_CFG = {"min_weeks": 3, "alignment_slope_ratio": 0.5, "noise_alpha": 0.05}


def test_alignment_flags_sign_flip_and_halving():
    tcr = [0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82, 0.84]
    down = [30 - 100 * (t - 0.70) for t in tcr]           # slope -100 contacts/1000 per unit TCR
    up = [30 + 100 * (t - 0.70) for t in tcr]             # +100: sign flipped
    weak = [30 - 40 * (t - 0.70) for t in tcr]            # -40: less than half
    same = [30 - 80 * (t - 0.70) for t in tcr]            # -80: held

    def run(ref_b, cur_b):
        weekly = {"reference": _weekly(tcr), "audit": _weekly(tcr, dt.date(2026, 3, 2))}
        cw = {"reference": _counters(ref_b), "audit": _counters(cur_b, dt.date(2026, 3, 2))}
        return audit.check_alignment(weekly, cw, CONTRACT, AUDIT_CFG)

    flip = run(down, up)
    assert flip["sign_flipped"] and flip["flagged"] and not flip["aligned"]
    assert flip["reference"]["slope"] == pytest.approx(-100) and flip["audit"]["slope"] == pytest.approx(100)
    assert flip["audit"]["corr"] == pytest.approx(1.0)
    # the note in the chart's units: -100 contacts per 1,000 per unit share = -1 per point
    assert "sign flipped (-1 -> +1 contacts per 1,000 per point of tcr)" in flip["note"]
    half = run(down, weak)
    assert half["slope_halved"] and half["flagged"] and not half["sign_flipped"]
    assert "below 0.5x the reference's (-1 -> -0.4 contacts per 1,000 per point of tcr)" in half["note"]
    held = run(down, same)
    assert not held["flagged"] and held["aligned"] and not held["inconclusive"]
    # a reference window whose slope is noise (contacts up and down at random around a flat
    # line) leaves nothing to hold the audit window against: inconclusive, not "not aligned"
    noisy = [30 + (5 if i % 2 else -5) for i in range(len(tcr))]  # a zigzag: its slope is checked below
    res = run(noisy, weak)
    x = np.array(tcr)
    y = np.array(noisy, dtype=float)
    slope, se = _ols_by_hand(x, y)
    assert res["reference"]["slope"] == pytest.approx(slope)
    assert slope - 2.447 * se < 0 < slope + 2.447 * se  # t(0.975, 6) = 2.447: within noise
    assert res["inconclusive"] and not res["flagged"] and not res["aligned"]
    assert res["note"].startswith("inconclusive: the reference window's slope is within noise")


def test_gaming_rule_hr_against_coverage():
    ref = {"hr": 0.04, "interactions": 10_000, "completed": 8000, "adjudicated": 9_000, "hallucinated": 360,
           "tcr": 0.8, "cpvo_usd": 0.003}
    cur = {"hr": 0.02, "interactions": 10_000, "completed": 8000, "adjudicated": 4_000, "hallucinated": 80,
           "tcr": 0.8, "cpvo_usd": 0.003}
    cnt = {"interactions": 10_000, "completed": 8000, "requeried": 100, "completed_escalated": 10}
    contract = {"counter_metrics": [{"primary": "hr", "counter": "hr_coverage"}]}
    (pair,) = audit.check_gaming(ref, cur, cnt, cnt, contract)
    assert pair["primary_improved"] and pair["counter_worsened_beyond_noise"] and pair["flagged"]
    assert pair["counter_reference"] == pytest.approx(0.9) and pair["counter_audit"] == pytest.approx(0.4)
    # coverage unchanged: no flag
    (pair,) = audit.check_gaming(ref, dict(cur, adjudicated=9_000, hallucinated=180), cnt, cnt, contract)
    assert pair["primary_improved"] and not pair["flagged"]


def _ols_by_hand(x, y):
    """Slope and its standard error, the textbook formulas."""
    xm, ym = x.mean(), y.mean()
    sxx = ((x - xm) ** 2).sum()
    slope = ((x - xm) * (y - ym)).sum() / sxx
    resid = y - (ym + slope * (x - xm))
    return slope, float(np.sqrt((resid ** 2).sum() / (len(x) - 2) / sxx))
