"""The 8-week metric audit (SPEC §6, seeds 001 and 000).

"If we were building this today, would we measure the same thing?" An audit compares
an audit window (the `window_weeks` = 8 full ISO weeks before the audit date) against
a reference window (the 8 weeks before that) and records:

* decay     per L6 metric: the ordinary least-squares slope of its weekly values over
            the audit window (x = weeks since the window's first Monday), with a 95%
            t-interval; weeks until the red line at that slope, counted from the fitted
            value of the window's last week, when the slope points toward red (0 when
            that fitted value is already red), else none.
* drift     population stability index of feature mix, domain mix, input_tokens and
            confidence, audit window against reference. Numeric: 10 bins cut at the
            reference window's deciles (continuous quantiles, linear interpolation),
            bins (-inf, e1], (e1, e2], ..., (e9, inf); categorical: one bin per value;
            nulls left out. PSI = sum over bins of (a - r) * ln(a / r), with a and r the
            audit and reference shares, each floored at 1e-4 (not renormalized).
            Bands: < 0.1 stable, 0.1-0.25 moderate, >= 0.25 major.
* calibration  expected calibration error of `confidence` against the latest tier-2
            verdict, interactions with both, in the audit window: 10 equal-width bins on
            [0, 1] (bin b = [b/10, (b+1)/10), the last bin closed), correct = not
            hallucinated, ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|.
* tier agreement  among interactions with both a tier-1 and a tier-2 verdict (the
            latest of each), the share that agree and Cohen's kappa; tier 3 against
            tiers 1 and 2 beside it.
* alignment the Pearson correlation and the OLS slope between the weekly north star and
            the weekly behavior it should drive (support contacts per 1,000 AI
            interactions: tickets filed in the week by users with an AI interaction that
            week, per 1,000 AI interactions), audit window against reference; flagged
            when the slope's sign flips or its magnitude falls below half the reference's.
* gaming    each primary metric beside its counter-metric (config: contract.counter_metrics),
            flagged when the primary improves (point estimate) while the counter worsens
            beyond noise (the 95% Wald interval of the difference of proportions excludes 0).
* data quality  the gate results of the pipeline runs that started inside the audit
            window (through the audit date) and of the run that built the warehouse.
* decision  the contract's weights applied to the window against reference: +w for a
            primary/secondary metric that improved beyond noise (Welch's t-test on the
            weekly values, two-sided 5%), -w when it worsened beyond noise; a violated
            guardrail or efficiency bar adds `weights.guardrail` (-2). Verdict:
            "re-define" when a check in `audit.verdict.redefine_on` is flagged, else "keep"
            when score >= keep_min_score, else "iterate".

The statistics live here (numpy/scipy); the row-level aggregation in sql/audit/*.sql;
weekly L6 values come from pipelines.l6.l6_table (the metrics are not recomputed).
Records go to `audit_records` (+ a flat `audit_checks` the audit gate validates); both
are `audit_*` tables, carried across warehouse rebuilds by the runner.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from scipy import stats as sps

from pipelines import CONFIG_DIR, config, l6, stats, warehouse

AUDIT_FORMAT = 1
VERDICTS = ("keep", "iterate", "re-define")
DRIFT_VARIABLES = {"feature": "categorical", "domain": "categorical",
                   "input_tokens": "numeric", "confidence": "numeric"}
# counter-metrics: direction ("higher"/"lower" is better), numerator, denominator, label
COUNTERS = {
    "requery_rate": ("lower", "requeried", "interactions",
                     "re-queries within 5 minutes (same user, same feature) per interaction"),
    "completed_escalation_rate": ("lower", "completed_escalated", "completed",
                                  "escalations after a completed outcome, per completed interaction"),
    "hr_coverage": ("higher", "adjudicated", "interactions", "adjudication coverage (adjudicated / all)"),
    "tcr": ("higher", "completed", "interactions", "Task Completion Rate"),
}
_OPS = {"<": lambda v, t: v < t, "<=": lambda v, t: v <= t, ">": lambda v, t: v > t, ">=": lambda v, t: v >= t}


# ====================================================================== configuration
def contract() -> dict:
    """The metric contract and audit settings (config/metric_contract.toml), validated."""
    doc = config.metric_contract()
    c, a = doc.get("contract"), doc.get("audit")
    where = CONFIG_DIR / "metric_contract.toml"
    if not isinstance(c, dict) or not isinstance(a, dict):
        raise config.ConfigError(f"{where} needs [contract] and [audit] sections (SPEC §6); restore them from git")
    metrics = set(config.METRICS)

    def need_metric(name, what):
        if name not in metrics:
            raise config.ConfigError(f"{where}: {what} = {name!r} is not an L6 metric ({', '.join(config.METRICS)})")

    need_metric(c.get("north_star"), "contract.north_star")
    for m in c.get("secondary", []):
        need_metric(m, "contract.secondary")
    for g in c.get("guardrails", []):
        need_metric(g.get("metric"), "contract.guardrails.metric")
        if g.get("op") not in _OPS or not isinstance(g.get("limit"), (int, float)):
            raise config.ConfigError(f"{where}: each guardrail needs op (<, <=, >, >=) and a numeric limit")
    eff = c.get("efficiency")
    if eff:
        need_metric(eff.get("metric"), "contract.efficiency.metric")
        if eff.get("op") not in _OPS or not isinstance(eff.get("bar"), (int, float)):
            raise config.ConfigError(f"{where}: contract.efficiency needs op (<, <=, >, >=) and a numeric bar")
    for p in c.get("counter_metrics", []):
        need_metric(p.get("primary"), "contract.counter_metrics.primary")
        if p.get("counter") not in COUNTERS:
            raise config.ConfigError(f"{where}: counter {p.get('counter')!r} is not one of {', '.join(COUNTERS)}")
    w = c.get("weights", {})
    for k in ("primary", "secondary", "guardrail"):
        if not isinstance(w.get(k), (int, float)):
            raise config.ConfigError(f"{where}: contract.weights.{k} must be a number")
    return {"version": doc["version"], "contract": c, "audit": a}


def config_versions() -> dict:
    """The version of every config file, and the contract file's SHA-256 (an edit without a bump shows)."""
    out = {}
    for path in sorted(CONFIG_DIR.glob("*.toml")):
        try:
            out[path.stem] = config.load(path.stem).get("version")
        except config.ConfigError:
            out[path.stem] = None
    contract_path = CONFIG_DIR / "metric_contract.toml"
    out["metric_contract_sha256"] = hashlib.sha256(contract_path.read_bytes()).hexdigest()[:16]
    return out


# ====================================================================== statistics
def ols(x, y, alpha: float = 0.05) -> dict:
    """OLS of y on x: slope, intercept, the slope's (1 - alpha) t-interval, n, se.

    Pairs with a missing y are dropped. Fewer than 3 points (or no spread in x): no
    interval; fewer than 2: no slope."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(len(x))
    out = {"slope": None, "intercept": None, "ci_low": None, "ci_high": None, "se": None, "n": n, "r": None}
    if n < 2:
        return out
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    if sxx == 0:
        return out
    slope = float(((x - xm) * (y - ym)).sum() / sxx)
    intercept = float(ym - slope * xm)
    out.update(slope=slope, intercept=intercept)
    syy = float(((y - ym) ** 2).sum())
    if syy > 0:
        out["r"] = float(((x - xm) * (y - ym)).sum() / math.sqrt(sxx * syy))
    if n >= 3:
        resid = y - (intercept + slope * x)
        se = math.sqrt(float((resid ** 2).sum()) / (n - 2) / sxx)
        t = float(sps.t.ppf(1 - alpha / 2, n - 2))
        out.update(se=se, ci_low=slope - t * se, ci_high=slope + t * se)
    return out


def level_shift(x, y, alpha: float = 0.05, min_seg: int = 2) -> dict | None:
    """A single step in a weekly series, which one straight line fitted across it reads as a
    trend ("red within 1 week" for a metric that jumped once and has been flat since).

    For each split into two runs of at least `min_seg` points, a line plus a step at the
    split is fitted by least squares; the split with the least squared error is the break.
    It counts as a level shift when the step improves on the line by an F-test (1 and n − 3
    degrees of freedom) at `alpha` / (number of splits tried): Bonferroni, since the best of
    several splits is picked. Returns None, or {"index": the first point after the break,
    "before", "after" (the two runs' means), "step" (the fitted jump), "p_value",
    "sse_line", "sse_step", "since": OLS over the points after the break (slope, its
    interval, intercept, n)}. Fewer than max(4, 2 * min_seg) points: None."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x)
    x, y = x[order], y[order]
    n = len(y)
    if n < max(4, 2 * min_seg):
        return None
    line = ols(x, y, alpha)
    if line["slope"] is None:
        return None
    sse_line = float(((y - (line["intercept"] + line["slope"] * x)) ** 2).sum())
    splits = list(range(min_seg, n - min_seg + 1))
    fits = {}
    for k in splits:
        design = np.column_stack([np.ones(n), x, (np.arange(n) >= k).astype(float)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        fits[k] = (float(((y - design @ coef) ** 2).sum()), float(coef[2]))
    k = min(fits, key=lambda j: fits[j][0])
    sse_step, jump = fits[k]
    gain = sse_line - sse_step
    tol = 1e-12 * max(1.0, float((y ** 2).sum()))  # rounding, not fit
    if gain <= tol:
        return None
    p = 0.0 if sse_step <= tol else float(sps.f.sf(gain / (sse_step / (n - 3)), 1, n - 3))
    if p >= alpha / len(splits):
        return None
    since = ols(x[k:], y[k:], alpha)
    return {"index": int(k), "before": float(y[:k].mean()), "after": float(y[k:].mean()), "step": jump,
            "p_value": p, "sse_line": sse_line, "sse_step": sse_step,
            "since": {"slope": since["slope"], "ci_low": since["ci_low"], "ci_high": since["ci_high"],
                      "intercept": since["intercept"], "n": since["n"]}}


def psi(reference_counts, audit_counts, floor: float = 1e-4) -> tuple[float | None, list[float], list[float], list[float]]:
    """PSI = sum (a - r) ln(a / r) over aligned bins, shares floored at `floor`.

    Returns (psi, reference shares, audit shares, per-bin contributions); psi is None
    when either side has no rows."""
    r = np.asarray(reference_counts, dtype=float)
    a = np.asarray(audit_counts, dtype=float)
    if r.sum() <= 0 or a.sum() <= 0:
        return None, [], [], []
    rs = np.maximum(r / r.sum(), floor)
    as_ = np.maximum(a / a.sum(), floor)
    contrib = (as_ - rs) * np.log(as_ / rs)
    return float(contrib.sum()), rs.tolist(), as_.tolist(), contrib.tolist()


def psi_band(value: float | None, bands=(0.1, 0.25)) -> str | None:
    if value is None:
        return None
    return "stable" if value < bands[0] else ("moderate" if value < bands[1] else "major")


def ece(bins: list[dict]) -> float | None:
    """ECE from per-bin sums: bins of {n, correct, sum_confidence}."""
    n = sum(b["n"] for b in bins)
    if not n:
        return None
    return float(sum(b["n"] / n * abs(b["correct"] / b["n"] - b["sum_confidence"] / b["n"]) for b in bins if b["n"]))


def cohen_kappa(table) -> dict:
    """Agreement and Cohen's kappa from a 2×2 table [[both no, first no/second yes],
    [first yes/second no, both yes]] (rows: first rater, columns: second rater)."""
    t = np.asarray(table, dtype=float)
    n = float(t.sum())
    if n == 0:
        return {"n": 0, "agreement": None, "kappa": None, "expected_agreement": None}
    po = float(np.trace(t) / n)
    pe = float((t.sum(axis=1) * t.sum(axis=0)).sum() / n ** 2)
    kappa = None if pe >= 1 else (po - pe) / (1 - pe)
    return {"n": int(n), "agreement": po, "kappa": kappa, "expected_agreement": pe}


def welch(a, b) -> float | None:
    """Two-sided p-value of Welch's t-test (None when it cannot be computed)."""
    a = [v for v in a if v is not None and math.isfinite(v)]
    b = [v for v in b if v is not None and math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return None
    if np.var(a) == 0 and np.var(b) == 0:
        return 0.0 if np.mean(a) != np.mean(b) else 1.0
    p = float(sps.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


# ====================================================================== windows
def windows(as_of: dt.date, weeks: int = 8) -> dict:
    """The audit window (the `weeks` full ISO weeks before as_of) and the reference window
    (the `weeks` weeks before it); ends are inclusive Sundays."""
    end_excl = as_of - dt.timedelta(days=as_of.weekday())  # Monday of as_of's week
    start = end_excl - dt.timedelta(weeks=weeks)
    return {
        "as_of": as_of,
        "window": {"start": start, "end": end_excl - dt.timedelta(days=1), "weeks": weeks},
        "reference": {"start": start - dt.timedelta(weeks=weeks), "end": start - dt.timedelta(days=1),
                      "weeks": weeks},
    }


def data_span(con: duckdb.DuckDBPyConnection) -> dict:
    first, last, n = warehouse.run_query(con, "audit/audit_data_span.sql").fetchall()[0]
    return {"first_date": first, "last_date": last, "interactions": n}


def default_as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The day after the last data date (the window then ends at the last full week of data)."""
    last = data_span(con)["last_date"]
    if last is None:
        raise ValueError("the warehouse holds no interactions: there is nothing to audit")
    return last + dt.timedelta(days=1)


# ====================================================================== the checks
def _rows(rel) -> list[dict]:
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]


def _f(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _weekly(con, w: dict) -> dict[str, list[dict]]:
    """Weekly L6 rows of the reference and audit windows (from l6.l6_table)."""
    table = l6.l6_table(con, "week", None, w["reference"]["start"], w["window"]["end"])
    out = {"reference": [], "audit": []}
    for r in table.iter_rows(named=True):
        for period, key in (("reference", "reference"), ("window", "audit")):
            if w[period]["start"] <= r["period_start"] <= w[period]["end"]:
                out[key].append(r)
    return out


def _window_l6(con, span: dict, filters: dict | None = None, with_retention: bool = True) -> dict | None:
    table = l6.l6_table(con, "all", filters, span["start"], span["end"], with_retention=with_retention)
    return table.row(0, named=True) if table.height else None


# what a metric did in the weeks after a level shift (audit.level_shift's "since" fit)
SINCE_WORDS = {"flat": "no significant trend since", "worse": "still heading to red since",
               "better": "improving since", "unknown": "too few weeks since to tell a trend"}
SINCE_MIN_WEEKS = 4  # fewer weeks after the step: no words on a trend since


def _worse(change: float | None, direction: str) -> bool:
    """A change (a slope, a step) toward the metric's red side."""
    return change is not None and change != 0 and ((change < 0) == (direction == "higher"))


def _since_trend(since: dict, direction: str) -> str:
    """flat | worse | better | unknown: the slope after a step, from its interval."""
    if since.get("n", 0) < SINCE_MIN_WEEKS or since.get("ci_low") is None:
        return "unknown"
    if since["ci_low"] <= 0 <= since["ci_high"]:
        return "flat"
    return "worse" if _worse(since["slope"], direction) else "better"


def check_decay(weekly_audit: list[dict], w: dict, alpha: float, min_weeks: int) -> dict:
    out = {}
    start = w["window"]["start"]
    for metric in config.METRICS:
        m = config.metric_contract()["metrics"][metric]
        pts = [((r["period_start"] - start).days / 7, _f(r[metric])) for r in weekly_audit]
        pts = [(x, y) for x, y in pts if y is not None]
        fit = ols([p[0] for p in pts], [p[1] for p in pts], alpha) if len(pts) >= min_weeks else \
            {"slope": None, "intercept": None, "ci_low": None, "ci_high": None, "n": len(pts)}
        slope = fit["slope"]
        toward = None
        level = weeks_to_red = None
        if slope is not None:
            x_last = max(p[0] for p in pts)
            level = fit["intercept"] + slope * x_last
            worse = _worse(slope, m["direction"])
            toward = "toward_red" if worse else ("toward_green" if slope != 0 else "flat")
            if worse:  # toward red: 0 when the fitted last week is already red
                weeks_to_red = 0.0 if config.status(metric, level) == "red" else max(0.0, (m["red"] - level) / slope)
        significant = (fit.get("ci_low") is not None
                       and (fit["ci_low"] > 0 or fit["ci_high"] < 0))
        flagged = bool(weeks_to_red == 0.0 or (toward == "toward_red" and significant))
        # a step inside the window: the line above projects it as a trend; say what happened
        # since the step (the recorded slope, weeks to red and flag stay the line's, SPEC §6)
        shift = level_shift([p[0] for p in pts], [p[1] for p in pts], alpha) if slope is not None else None
        if shift:
            xs = sorted(p[0] for p in pts)
            shift["week_start"] = str(start + dt.timedelta(days=round(7 * xs[shift["index"]])))
            shift["toward_red"] = _worse(shift["step"], m["direction"])  # the fitted jump's sign
            shift["since_trend"] = _since_trend(shift["since"], m["direction"])
            shift["since_words"] = SINCE_WORDS[shift["since_trend"]]
        out[metric] = {
            "slope_per_week": slope, "ci_low": fit.get("ci_low"), "ci_high": fit.get("ci_high"),
            "intercept": fit.get("intercept"), "n_weeks": fit["n"], "weeks_to_red": weeks_to_red,
            "direction": toward, "significant": bool(significant), "fitted_last": level,
            "status_last": config.status(metric, level) if level is not None else "n/a",
            "red_line": m["red"], "red_op": m["red_op"], "flagged": flagged, "level_shift": shift,
        }
    return out


def check_drift(con, w: dict, floor: float, bands, n_bins: int = 10, alpha: float = 0.05,
                details: dict | None = None) -> dict:
    """PSI (and a chi-square test beside it) per input; `details` (if given) receives the bins."""
    details = {} if details is None else details
    quantiles = [k / n_bins for k in range(1, n_bins)]
    params = {"reference_start": w["reference"]["start"], "reference_end": w["reference"]["end"],
              "window_start": w["window"]["start"], "window_end": w["window"]["end"], "quantiles": quantiles}
    deciles = {r["period"]: r for r in _rows(warehouse.run_query(con, "audit/audit_drift_edges.sql", params))}
    ref_q = deciles.get("reference", {})
    cur_q = deciles.get("audit", {})
    edges = {v: [float(e) for e in (ref_q.get(f"{v}_deciles") or [])] or [0.0] * (n_bins - 1)
             for v, kind in DRIFT_VARIABLES.items() if kind == "numeric"}
    params.update({f"{v}_edges": e for v, e in edges.items()})
    counts = _rows(warehouse.run_query(con, "audit/audit_drift_counts.sql", params))
    out = {}
    for var, kind in DRIFT_VARIABLES.items():
        rows = [r for r in counts if r["variable"] == var]
        if kind == "numeric":
            e = edges[var]
            keys = [str(i) for i in range(len(e) + 1)]
            lows, highs = [None] + e, e + [None]
        else:
            keys = sorted({r["bin"] for r in rows})
        ref = {r["bin"]: int(r["n"]) for r in rows if r["period"] == "reference"}
        cur = {r["bin"]: int(r["n"]) for r in rows if r["period"] == "audit"}
        rc = [ref.get(k, 0) for k in keys]
        ac = [cur.get(k, 0) for k in keys]
        value, rs, as_, contrib = psi(rc, ac, floor)
        bins = []
        for i, k in enumerate(keys):
            b = {"bin": k if kind == "categorical" else i, "reference_n": rc[i], "audit_n": ac[i],
                 "reference_share": rs[i] if rs else None, "audit_share": as_[i] if as_ else None,
                 "contribution": contrib[i] if contrib else None}
            if kind == "numeric":
                b.update(lower=lows[i], upper=highs[i],
                         label=(f"<= {highs[i]:.4g}" if lows[i] is None else
                                f"> {lows[i]:.4g}" if highs[i] is None else f"({lows[i]:.4g}, {highs[i]:.4g}]"))
            else:
                b["label"] = k
            bins.append(b)
        # beside PSI (magnitude): is the shift beyond noise? chi-square test of homogeneity
        # over the same bins (bins empty in both windows dropped)
        chi2 = p_value = None
        table = np.array([[r, a] for r, a in zip(rc, ac) if r + a > 0], dtype=float).T
        if table.ndim == 2 and table.shape[1] >= 2 and table.sum(axis=1).all():
            res = sps.chi2_contingency(table, correction=False)
            chi2, p_value = float(res[0]), float(res[1])
        band = psi_band(value, bands)
        movers = sorted((b for b in bins if b["reference_share"] is not None),
                        key=lambda b: -abs(b["audit_share"] - b["reference_share"]))[:3]
        # the entry is flat (one table row per input on the audit page); bins and deciles
        # go to details[var]
        entry = {"psi": value, "band": band, "kind": kind, "flagged": band in ("moderate", "major"),
                 "chi2": chi2, "p_value": p_value,
                 "shift_detected": p_value is not None and p_value < alpha,
                 "n_reference": sum(rc), "n_audit": sum(ac), "n_bins": len(keys),
                 "reference_median": None, "audit_median": None,
                 "top_movers": "; ".join(f"{b['label']} {100 * (b['audit_share'] - b['reference_share']):+.2f} pts"
                                         for b in movers)}
        detail = {"bins": bins}
        if kind == "numeric":
            rq, cq = ref_q.get(f"{var}_deciles"), cur_q.get(f"{var}_deciles")
            mid = len(quantiles) // 2
            entry.update(reference_median=rq[mid] if rq else None, audit_median=cq[mid] if cq else None)
            detail.update(edges=edges[var], reference_deciles=rq, audit_deciles=cq)
        out[var] = entry
        details[var] = detail
    return out


def check_calibration(con, w: dict, limit: float, n_bins: int = 10) -> dict:
    edges = [k / n_bins for k in range(1, n_bins)]
    params = {"reference_start": w["reference"]["start"], "reference_end": w["reference"]["end"],
              "window_start": w["window"]["start"], "window_end": w["window"]["end"], "bin_edges": edges}
    rows = _rows(warehouse.run_query(con, "audit/audit_calibration.sql", params))

    def summarize(period):
        got = {r["bin"]: r for r in rows if r["period"] == period}
        bins = []
        for b in range(n_bins):
            r = got.get(b)
            n = int(r["n"]) if r else 0
            bins.append({"bin": b, "lower": b / n_bins, "upper": (b + 1) / n_bins, "n": n,
                         "correct": int(r["correct"]) if r else 0,
                         "sum_confidence": float(r["sum_confidence"]) if r else 0.0,
                         "accuracy": r["correct"] / n if n else None,
                         "mean_confidence": r["sum_confidence"] / n if n else None})
        for b in bins:
            b["gap"] = None if not b["n"] else abs(b["accuracy"] - b["mean_confidence"])
        n = sum(b["n"] for b in bins)
        mean_conf = sum(b["sum_confidence"] for b in bins) / n if n else None
        acc = sum(b["correct"] for b in bins) / n if n else None
        return {"ece": ece(bins), "n": n, "mean_confidence": mean_conf, "accuracy": acc, "bins": bins}

    cur, ref = summarize("audit"), summarize("reference")
    value = cur["ece"]
    return {**cur, "limit": limit, "flagged": value is not None and value > limit,
            "reference": {k: ref[k] for k in ("ece", "n", "mean_confidence", "accuracy")},
            "verdict_source": "latest tier-2 verdict; correct = not hallucinated"}


def check_tiers(con, w: dict, kappa_min: float) -> dict:
    params = {"reference_start": w["reference"]["start"], "reference_end": w["reference"]["end"],
              "window_start": w["window"]["start"], "window_end": w["window"]["end"]}
    rows = _rows(warehouse.run_query(con, "audit/audit_tier_agreement.sql", params))

    def pair(period, name):
        t = [[0, 0], [0, 0]]
        for r in rows:
            if r["period"] == period and r["pair"] == name:
                t[int(bool(r["first_verdict"]))][int(bool(r["second_verdict"]))] += int(r["n"])
        res = cohen_kappa(t)
        res["table"] = {"both_not_hallucinated": t[0][0], "first_only_not": t[0][1],
                        "first_only_hallucinated": t[1][0], "both_hallucinated": t[1][1]}
        return res

    main = pair("audit", "1v2")
    ref = pair("reference", "1v2")
    k = main["kappa"]
    return {**main, "pair": "tier 1 vs tier 2", "kappa_min": kappa_min,
            "flagged": k is not None and k < kappa_min,
            "reference": {key: ref[key] for key in ("n", "agreement", "kappa")},
            "tier3": {"vs_tier1": pair("audit", "1v3"), "vs_tier2": pair("audit", "2v3"),
                      "note": "tier 3 (behavioral) is reported beside, never mixed into the final verdict"}}


def _counters(rows: list[dict]) -> dict:
    keys = ("interactions", "completed", "requeried", "completed_escalated", "ai_users", "tickets", "ai_user_tickets")
    return {k: int(sum(r[k] or 0 for r in rows)) for k in keys}


def check_alignment(weekly: dict, counters_weekly: dict, c: dict, a: dict) -> dict:
    ns = c["north_star"]
    behavior = c.get("behavior", {})
    expected = behavior.get("expected_sign", -1)
    min_weeks = a.get("min_weeks", 3)

    def fit(period):
        by_week = {r["week_start"]: r for r in counters_weekly[period]}
        pts = []
        for r in weekly[period]:
            cw = by_week.get(r["period_start"])
            if cw and cw["interactions"] and r[ns] is not None:
                pts.append({"period_start": r["period_start"], "north_star": _f(r[ns]),
                            "behavior": 1000 * cw["ai_user_tickets"] / cw["interactions"]})
        res = {"n_weeks": len(pts), "corr": None, "slope": None, "ci_low": None, "ci_high": None, "points": pts}
        if len(pts) >= min_weeks:
            f = ols([p["north_star"] for p in pts], [p["behavior"] for p in pts], a.get("noise_alpha", 0.05))
            res.update(corr=f["r"], slope=f["slope"], ci_low=f["ci_low"], ci_high=f["ci_high"])
        return res

    cur, ref = fit("audit"), fit("reference")
    ratio = a.get("alignment_slope_ratio", 0.5)
    flipped = halved = False
    note = []
    # the slopes in the units the Audit page's chart draws: a share north star per percentage
    # point (the stored slope is per unit share: -66.7 there is -0.667 per point)
    share = config.metric_contract()["metrics"].get(ns, {}).get("unit") == "share"
    per, per_words = (100.0, f" per point of {ns}") if share else (1.0, f" per unit of {ns}")

    def moved() -> str:
        return f"({ref['slope'] / per:+.3g} -> {cur['slope'] / per:+.3g} contacts per 1,000{per_words})"

    def noise(r) -> bool:  # the slope's 95% interval spans 0
        return r["ci_low"] is not None and r["ci_low"] <= 0 <= r["ci_high"]

    inconclusive = False
    if cur["slope"] is None or ref["slope"] is None:
        note.append("too few weeks with both values to compare")
    elif noise(ref):
        # no reference relation to hold the audit window against: a "halving" or a "flip" of
        # a slope that is itself noise says nothing (the demo's flat reference TCR did)
        inconclusive = True
        note.append(f"inconclusive: the reference window's slope is within noise (95% interval spans 0), so there "
                    f"is no reference relation to compare with {moved()}")
        if noise(cur):
            note.append("the audit window's slope is within noise too")
    else:
        flipped = (cur["slope"] > 0) != (ref["slope"] > 0)
        halved = not flipped and abs(cur["slope"]) < ratio * abs(ref["slope"])
        if flipped:
            note.append(f"the slope's sign flipped {moved()}")
        elif halved:
            note.append(f"the slope fell below {ratio:g}x the reference's {moved()}")
        else:
            note.append(f"the slope held {moved()}")
        if (cur["slope"] > 0) != (expected > 0):
            note.append(f"the audit window's slope has the opposite sign of the expected ({'+' if expected > 0 else '-'})")
        for label, r in (("reference", ref), ("audit", cur)):
            if noise(r):
                note.append(f"the {label} window's slope is within noise (95% interval spans 0)")
    flagged = bool(flipped or halved)
    expected_ok = cur["slope"] is not None and (cur["slope"] > 0) == (expected > 0)
    return {"north_star": ns, "behavior": behavior.get("name", "support contacts per 1,000 AI interactions"),
            "behavior_definition": ("1000 x support tickets created in the week by users with an AI interaction "
                                    "that week / AI interactions that week"),
            "expected_sign": expected, "unit": "contacts per 1,000 AI interactions per unit of the north star",
            "audit": cur, "reference": ref, "sign_flipped": flipped, "slope_halved": halved,
            "flagged": flagged, "inconclusive": inconclusive,
            "aligned": (not flagged) and (not inconclusive) and expected_ok, "note": "; ".join(note)}


def check_gaming(l6_ref: dict | None, l6_cur: dict | None, cnt_ref: dict, cnt_cur: dict, c: dict) -> list[dict]:
    out = []
    metrics = config.metric_contract()["metrics"]

    def counts(name, l6row, cnt):
        if name in COUNTERS:
            _, num, den, _ = COUNTERS[name]
            src = {**cnt, **{k: l6row[k] for k in ("interactions", "completed", "adjudicated")}} if l6row else cnt
            return src.get(num), src.get(den)
        return None, None

    for pair in c.get("counter_metrics", []):
        p, k = pair["primary"], pair["counter"]
        pdir = metrics[p]["direction"]
        kdir = COUNTERS[k][0]
        p_ref = _f(l6_ref[p]) if l6_ref else None
        p_cur = _f(l6_cur[p]) if l6_cur else None
        kn_ref, kd_ref = counts(k, l6_ref, cnt_ref)
        kn_cur, kd_cur = counts(k, l6_cur, cnt_cur)
        k_ref = kn_ref / kd_ref if kd_ref else None
        k_cur = kn_cur / kd_cur if kd_cur else None
        # the primary: improvement by point estimate; its own interval when it is a proportion
        p_improved = None if p_cur is None or p_ref is None else (p_cur > p_ref if pdir == "higher" else p_cur < p_ref)
        p_ci = (None, None)
        if p in COUNTERS and l6_ref and l6_cur:
            pn_ref, pd_ref = counts(p, l6_ref, cnt_ref)
            pn_cur, pd_cur = counts(p, l6_cur, cnt_cur)
            _, lo, hi = stats.diff_of_proportions(pn_cur, pd_cur, pn_ref, pd_ref)
            p_ci = (lo, hi)
        elif p == "hr" and l6_ref and l6_cur:
            _, lo, hi = stats.diff_of_proportions(l6_cur["hallucinated"], l6_cur["adjudicated"],
                                                  l6_ref["hallucinated"], l6_ref["adjudicated"])
            p_ci = (lo, hi)
        diff, lo, hi = stats.diff_of_proportions(kn_cur, kd_cur, kn_ref, kd_ref) if kd_ref and kd_cur \
            else (None, None, None)
        k_worse_beyond = None
        if diff is not None:
            k_worse_beyond = (lo > 0) if kdir == "lower" else (hi < 0)
        flagged = bool(p_improved and k_worse_beyond)

        def rel(cur, ref):
            return None if cur is None or ref in (None, 0) else 100 * (cur - ref) / abs(ref)

        note = (f"{p} improved ({_fmt(p_ref)} -> {_fmt(p_cur)}) while {k} worsened beyond noise "
                f"({_fmt(k_ref)} -> {_fmt(k_cur)}): possible gaming" if flagged else
                f"no sign of gaming: {p} {'improved' if p_improved else 'did not improve'}"
                + (f", so {k} worsening beyond noise is not its price (worth a look on its own)"
                   if k_worse_beyond and not p_improved else
                   f"; {k} {'worsened beyond noise' if k_worse_beyond else 'did not worsen beyond noise'}"))
        out.append({"primary": p, "counter": k, "counter_label": COUNTERS[k][3],
                    "primary_direction": pdir, "counter_direction": kdir,
                    "primary_reference": p_ref, "primary_audit": p_cur,
                    "primary_change": rel(p_cur, p_ref), "primary_improved": p_improved,
                    "primary_diff_ci_low": p_ci[0], "primary_diff_ci_high": p_ci[1],
                    "counter_reference": k_ref, "counter_audit": k_cur,
                    "counter_change": rel(k_cur, k_ref),
                    "counter_n_reference": kd_ref, "counter_n_audit": kd_cur,
                    "counter_diff": diff, "counter_diff_ci_low": lo, "counter_diff_ci_high": hi,
                    "counter_worsened_beyond_noise": k_worse_beyond,
                    "flagged": flagged, "flag": flagged, "note": note})
    return out


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}"


def check_data_quality(con, w: dict, as_of: dt.date) -> dict:
    out = {"runs": [], "gate_runs": [], "critical_failures": 0, "warnings": 0, "checks": 0,
           "note": ""}
    if not warehouse.table_exists(con, "meta_runs"):
        out["note"] = "no run history (meta_runs) in this warehouse"
        return out
    params = {"from_ts": dt.datetime.combine(w["window"]["start"], dt.time()),
              "to_ts": dt.datetime.combine(as_of, dt.time())}
    runs = _rows(warehouse.run_query(con, "audit/audit_runs.sql", params))
    results = []
    if runs and warehouse.table_exists(con, "meta_gate_results"):
        results = _rows(warehouse.run_query(con, "audit/audit_gate_results.sql",
                                            {"run_ids": [r["run_id"] for r in runs]}))
    for r in runs:
        mine = [g for g in results if g["run_id"] == r["run_id"]]
        failures = [g for g in mine if not g["success"]]
        crit = [g for g in failures if g["severity"] == "critical"]
        warn = [g for g in failures if g["severity"] != "critical"]
        out["runs"].append({
            "run_id": r["run_id"], "command": r["command"], "started_at": r["started_at"],
            "status": r["status"], "failed_stage": r["failed_stage"], "in_window": bool(r["in_window"]),
            "built_this_warehouse": bool(r["built_this_warehouse"]), "checks": len(mine),
            "critical_failures": len(crit), "warnings": len(warn), "gated": bool(mine),
            "failures": [{k: g[k] for k in ("stage", "suite", "expectation", "column_name", "severity",
                                            "observed_value", "unexpected_count")} for g in failures[:25]],
        })
        out["checks"] += len(mine)
        out["critical_failures"] += len(crit)
        out["warnings"] += len(warn)
    out["gate_runs"] = [r["run_id"] for r in runs]
    in_window = sum(1 for r in out["runs"] if r["in_window"])
    builder = any(r["built_this_warehouse"] for r in out["runs"])
    out["note"] = (f"{len(runs)} run(s): {in_window} started inside the audit window (through {as_of})"
                   + (", plus the run that built this warehouse" if builder and in_window < len(runs) else "")
                   + f"; {out['checks']} gate check(s), {out['critical_failures']} critical failure(s), "
                   f"{out['warnings']} warning(s)")
    out["flagged"] = out["critical_failures"] > 0 or any(r["status"] not in ("success", "running")
                                                         for r in out["runs"])
    if not out["checks"]:  # nothing was checked: no "ok" to give
        out["flagged"] = None
        out["note"] += ": no gate results to vouch for the data"
    return out


def score_range() -> dict:
    """The weighted score's scale under the current contract: {"low", "high", "keep_min"}.
    High: the primary and every secondary metric improved; low: all of them worsened and
    every guardrail (and the efficiency bar) was violated."""
    cfg = contract()
    c, a = cfg["contract"], cfg["audit"]
    w = c["weights"]
    movers = abs(w["primary"]) + abs(w["secondary"]) * len(c.get("secondary", []))
    limits = len(c.get("guardrails", [])) + (1 if c.get("efficiency") else 0)
    return {"low": -movers + min(0.0, w["guardrail"]) * limits, "high": movers,
            "keep_min": float(a.get("verdict", {}).get("keep_min_score", 0.0))}


def weighted_decision(weekly: dict, l6_ref: dict | None, l6_cur: dict | None, guardrail_rows: list[dict],
                      flags: dict, c: dict, a: dict) -> dict:
    wts = c["weights"]
    alpha = a.get("noise_alpha", 0.05)
    metrics = config.metric_contract()["metrics"]
    items = []
    for metric, role, weight in ([(c["north_star"], "primary", wts["primary"])]
                                 + [(m, "secondary", wts["secondary"]) for m in c.get("secondary", [])]):
        ref_w = [_f(r[metric]) for r in weekly["reference"]]
        cur_w = [_f(r[metric]) for r in weekly["audit"]]
        p = welch(cur_w, ref_w)
        ref_v = _f(l6_ref[metric]) if l6_ref else None
        cur_v = _f(l6_cur[metric]) if l6_cur else None
        ref_mean = np.mean([v for v in ref_w if v is not None]) if any(v is not None for v in ref_w) else None
        cur_mean = np.mean([v for v in cur_w if v is not None]) if any(v is not None for v in cur_w) else None
        change = 0
        if p is not None and p < alpha and ref_mean is not None and cur_mean is not None:
            better = cur_mean > ref_mean if metrics[metric]["direction"] == "higher" else cur_mean < ref_mean
            change = 1 if better else -1
        items.append({"metric": metric, "role": role, "weight": weight, "reference": ref_v, "audit": cur_v,
                      "reference_weekly_mean": _f(ref_mean), "audit_weekly_mean": _f(cur_mean), "p_value": p,
                      "change": {1: "improved", -1: "worsened", 0: "within noise"}[change],
                      "points": weight * change})
    for g in guardrail_rows:
        items.append({"metric": g["metric"], "role": g["role"], "weight": wts["guardrail"], "audit": g["value"],
                      "limit": g["limit"], "op": g["op"], "violated": g["violated"],
                      "domains_violated": g.get("domains_violated", []),
                      "points": wts["guardrail"] if g["violated"] else 0.0})
    score = float(sum(i["points"] for i in items))
    v = a.get("verdict", {})
    redefine = [k for k in v.get("redefine_on", ["alignment", "gaming"]) if flags.get(k)]
    if redefine:
        verdict, why = "re-define", f"flagged: {', '.join(redefine)}"
    elif score >= v.get("keep_min_score", 0.0):
        verdict, why = "keep", f"score {score:+g} >= {v.get('keep_min_score', 0.0):g} and nothing flagged"
    else:
        verdict, why = "iterate", f"score {score:+g} < {v.get('keep_min_score', 0.0):g}"
    return {"items": items, "score": score, "verdict": verdict, "reason": why,
            "rule": ("re-define when a check in audit.verdict.redefine_on is flagged; keep when score >= "
                     "keep_min_score; else iterate")}


_ADDITIVE = ("tcr", "hr", "hitl_per_100")


def _ratios(counts: dict) -> dict:
    """TCR, HR and HitL-F (SPEC §3) from one domain's summed l6_daily components."""
    n, adj = counts["interactions"], counts["adjudicated"]
    return {**counts,
            "tcr": counts["completed"] / n if n else None,
            "hr": counts["hallucinated"] / adj if adj else None,
            "hitl_per_100": 100 * counts["interventions"] / n if n else None}


def check_guardrails(con, w: dict, l6_cur: dict | None, c: dict) -> list[dict]:
    rows = []
    specs = [dict(g, role="guardrail") for g in c.get("guardrails", [])]
    if c.get("efficiency"):
        e = c["efficiency"]
        specs.append({"metric": e["metric"], "op": e["op"], "limit": e["bar"], "role": "efficiency",
                      "per_domain": e.get("per_domain", False), "note": e.get("note", "")})
    domains = None
    for g in specs:
        m, op, limit = g["metric"], g["op"], g["limit"]
        value = _f(l6_cur[m]) if l6_cur else None
        violated = value is not None and not _OPS[op](value, limit)
        per_domain = []
        if g.get("per_domain"):
            if domains is None:  # one row per domain with its additive components
                domains = _rows(warehouse.run_query(
                    con, "audit/audit_domains.sql", {"date_from": w["window"]["start"], "date_to": w["window"]["end"]}))
            for counts in domains:
                d = counts["domain"]
                # TCR, HR and HitL-F are ratios of additive counts: no L6 roll-up per domain
                r = (_ratios(counts) if m in _ADDITIVE else
                     _window_l6(con, w["window"], {"domain": d}, with_retention=m == "retention_delta_pts"))
                if r is None:
                    continue
                dv = _f(r[m])
                lo = hi = None
                if m == "hr":
                    lo, hi = stats.wilson(r["hallucinated"], r["adjudicated"])
                elif m == "tcr":
                    lo, hi = stats.wilson(r["completed"], r["interactions"])
                if dv is None:
                    continue
                # beyond the limit with its whole 95% interval (point value when no interval)
                if lo is None:
                    bad = not _OPS[op](dv, limit)
                else:
                    bad = (lo > limit) if op in ("<", "<=") else (hi < limit)
                per_domain.append({"domain": d, "value": dv, "ci_low": lo, "ci_high": hi, "violated": bad})
        dom_bad = [d["domain"] for d in per_domain if d["violated"]]
        rows.append({"metric": m, "role": g["role"], "op": op, "limit": limit, "value": value,
                     "violated": bool(violated or dom_bad), "overall_violated": bool(violated),
                     "domains_violated": dom_bad, "per_domain": per_domain, "note": g.get("note", "")})
    return rows


def latest_audit_date(last_date: dt.date) -> dt.date:
    """The latest audit date (as of) for data ending on `last_date`: the Monday after its
    week, whose window's last week still holds data (run_audit refuses a later one)."""
    return last_date + dt.timedelta(days=7 - last_date.weekday())


# ====================================================================== run
def run_audit(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None) -> dict:
    """Compute every finding of one audit (no write). as_of: the audit date (default: the
    day after the last data date)."""
    cfg = contract()
    c, a = cfg["contract"], cfg["audit"]
    if not warehouse.table_exists(con, "l6_daily"):
        raise ValueError("the warehouse holds no metric tables yet (its first run failed); nothing to audit")
    span = data_span(con)
    if span["last_date"] is None:
        raise ValueError("the warehouse holds no interactions: there is nothing to audit")
    if as_of is None:
        as_of = span["last_date"] + dt.timedelta(days=1)
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    weeks = int(a.get("window_weeks", 8))
    w = windows(as_of, weeks)
    # the window's last week must hold data: an audit further out audits empty weeks and, as
    # the audit of the newest date, would stay "the latest audit" until the data catch up
    latest_as_of = latest_audit_date(span["last_date"])
    if w["window"]["end"] - dt.timedelta(days=6) > span["last_date"]:
        raise ValueError(f"the audit date {as_of} is after the data (they end on {span['last_date']}): the last "
                         f"week of its window holds no data; choose --as-of {latest_as_of} or earlier (default: "
                         f"{span['last_date'] + dt.timedelta(days=1)}, the day after the data)")
    alpha = float(a.get("noise_alpha", 0.05))
    if span["last_date"] < w["window"]["start"] or span["first_date"] > w["window"]["end"]:
        raise ValueError(f"no interactions in the audit window {w['window']['start']} .. {w['window']['end']} "
                         f"(the data span {span['first_date']} .. {span['last_date']}); choose an --as-of whose "
                         f"{weeks} full weeks before it overlap the data (default: the day after the last data "
                         f"date, {span['last_date'] + dt.timedelta(days=1)})")
    notes = []
    if span["first_date"] > w["reference"]["end"]:
        notes.append(f"no data in the reference window ({w['reference']['start']} .. {w['reference']['end']}): "
                     "nothing to compare against; changes, drift and alignment are not assessed")
    elif span["first_date"] > w["reference"]["start"]:
        notes.append(f"data start on {span['first_date']}, after the reference window's start "
                     f"({w['reference']['start']}): the reference window is partial")
    if span["last_date"] < w["window"]["end"]:
        notes.append(f"data end on {span['last_date']}, before the audit window's end ({w['window']['end']})")

    weekly = _weekly(con, w)
    l6_ref = _window_l6(con, w["reference"])
    l6_cur = _window_l6(con, w["window"])
    cw_params = {"date_from": w["reference"]["start"], "date_to": w["window"]["end"],
                 "requery_seconds": int(a.get("requery_seconds", 300))}
    cw = _rows(warehouse.run_query(con, "audit/audit_weekly_counters.sql", cw_params))
    counters_weekly = {
        "reference": [r for r in cw if w["reference"]["start"] <= r["week_start"] <= w["reference"]["end"]],
        "audit": [r for r in cw if w["window"]["start"] <= r["week_start"] <= w["window"]["end"]],
    }

    decay = check_decay(weekly["audit"], w, alpha, int(a.get("min_weeks", 3)))
    drift_bins: dict = {}
    drift = check_drift(con, w, float(a.get("psi_floor", 1e-4)), tuple(a.get("psi_bands", (0.1, 0.25))),
                        int(a.get("psi_bins", 10)), alpha, drift_bins)
    calibration = check_calibration(con, w, float(a.get("calibration_ece_limit", 0.10)), int(a.get("ece_bins", 10)))
    tiers = check_tiers(con, w, float(a.get("kappa_min", 0.6)))
    alignment = check_alignment(weekly, counters_weekly, c, a)
    gaming = check_gaming(l6_ref, l6_cur, _counters(counters_weekly["reference"]),
                          _counters(counters_weekly["audit"]), c)
    dq = check_data_quality(con, w, as_of)
    guardrails = check_guardrails(con, w, l6_cur, c)
    flagged = {
        "decay": any(d["flagged"] for d in decay.values()),
        "drift": any(d["flagged"] for d in drift.values()),
        "calibration": bool(calibration["flagged"]),
        "tier_agreement": bool(tiers["flagged"]),
        "alignment": bool(alignment["flagged"]),
        "gaming": any(g["flagged"] for g in gaming),
        "data_quality": bool(dq.get("flagged")),
        "guardrails": any(g["violated"] for g in guardrails),
    }
    decision = weighted_decision(weekly, l6_ref, l6_cur, guardrails, flagged, c, a)
    if span["first_date"] > w["reference"]["end"]:  # a score of 0 here means "not compared", not "steady"
        decision["reason"] += ("; nothing was compared: no data in the reference window, so no metric could "
                               "improve or worsen and drift and alignment are not assessed")

    flags = []
    for m, d in decay.items():
        if d["flagged"]:
            sh = d.get("level_shift")
            flags.append(f"decay: {m} " + ("is at its red line (fitted last week red)" if d["weeks_to_red"] == 0
                                           else f"heads to red at {d['slope_per_week']:+.3g}/week, "
                                                f"red in {d['weeks_to_red']:.1f} weeks")
                         + (f"; the line spans a level shift in the week of {sh['week_start']} "
                            f"({sh['before']:.4g} → {sh['after']:.4g}), {sh['since_words']}" if sh else ""))
    for v, d in drift.items():
        if d["flagged"]:
            flags.append(f"drift: {v} PSI {d['psi']:.3f} ({d['band']})")
        elif d["shift_detected"]:
            flags.append(f"drift (minor): {v} shifted beyond noise (chi-square p = {d['p_value']:.2g}) "
                         f"but PSI {d['psi']:.3f} is stable")
    if calibration["flagged"]:
        flags.append(f"calibration: ECE {calibration['ece']:.3f} > {calibration['limit']:g}")
    if tiers["flagged"]:
        flags.append(f"tier agreement: kappa {tiers['kappa']:.2f} < {tiers['kappa_min']:g}")
    if alignment["flagged"]:
        flags.append(f"alignment: {alignment['note']}")
    for g in gaming:
        if g["flagged"]:
            flags.append(f"gaming: {g['note']}")
    for g in guardrails:
        if g["violated"]:
            where = (f" in {', '.join(g['domains_violated'])}" if g["domains_violated"] else "")
            flags.append(f"{g['role']}: {g['metric']} {g['op']} {g['limit']:g} violated{where}"
                         + (f" (window value {g['value']:.4g})" if g["value"] is not None else ""))
    if dq.get("flagged"):
        flags.append(f"data quality: {dq['critical_failures']} critical gate failure(s) in the runs used")

    findings = {
        "format": AUDIT_FORMAT,
        "as_of": as_of,
        "data": span,
        "window": w["window"],
        "reference": w["reference"],
        "contract_version": cfg["version"],
        "config_versions": config_versions(),
        "contract": {"primary_decision": c.get("primary_decision"), "north_star": c["north_star"],
                     "secondary": c.get("secondary", []), "guardrails": c.get("guardrails", []),
                     "efficiency": c.get("efficiency"), "weights": c["weights"],
                     "behavior": c.get("behavior"), "counter_metrics": c.get("counter_metrics", [])},
        "decay": decay,
        "drift": drift,
        "drift_bins": drift_bins,
        "calibration": calibration,
        "tier_agreement": tiers,
        "alignment": alignment,
        "gaming": gaming,
        "guardrails": guardrails,
        "data_quality": dq,
        "weekly": {p: [{k: r[k] for k in ("period_start", *config.METRICS, "interactions", "hr_coverage")}
                       for r in weekly[p]] for p in ("reference", "audit")},
        "weekly_counters": counters_weekly,
        "window_values": {"reference": _pick(l6_ref), "audit": _pick(l6_cur)},
        "flagged": flagged,
        "flags": flags,
        "scorecard": decision,
        "score": decision["score"],
        "verdict": decision["verdict"],
        "notes": notes,
        "reference_empty": bool(span["first_date"] > w["reference"]["end"]),  # nothing was compared
    }
    return clean(findings)


def _pick(row: dict | None) -> dict | None:
    if row is None:
        return None
    keys = list(config.METRICS) + ["interactions", "hr_coverage", "tier3_hr", "completed", "adjudicated",
                                   "hallucinated", "valid"]
    return {k: row.get(k) for k in keys}


def clean(obj: Any) -> Any:
    """JSON-ready: dates as ISO strings, NaN/inf as None, numpy scalars as Python."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ====================================================================== records
_RECORD_COLUMNS = ("audit_id", "created_at", "as_of", "window_start", "window_end", "reference_start",
                   "reference_end", "data_last_date", "contract_version", "config_versions", "findings",
                   "score", "verdict", "gate_runs", "gate_success", "decision", "signed_by", "signed_at",
                   "next_due")
_JSON_COLUMNS = ("config_versions", "findings", "gate_runs")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _write_connection(db_path: str | Path) -> duckdb.DuckDBPyConnection:
    db_path = Path(db_path)
    if not db_path.exists():
        raise ValueError(f"warehouse {db_path} does not exist")
    for attempt in range(20):
        try:
            return warehouse.connect(db_path)
        except duckdb.IOException:  # a reader or a run holds the file: retry briefly
            if attempt == 19:
                raise
            time.sleep(0.25 * (attempt + 1))
    raise RuntimeError("unreachable")


def check_rows(audit_id: str, f: dict) -> list[tuple]:
    """The findings in flat form (audit_checks rows) for the audit gate."""
    rows: list[tuple] = []

    def add(check, subject, measure, kind, value, lo=None, hi=None, flagged=None):
        rows.append((audit_id, check, str(subject), measure, kind, _f(value), _f(lo), _f(hi),
                     None if flagged is None else bool(flagged)))

    for m, d in f.get("decay", {}).items():
        add("decay", m, "slope_per_week", "slope", d["slope_per_week"], d["ci_low"], d["ci_high"], d["flagged"])
        add("decay", m, "weeks_to_red", "weeks", d["weeks_to_red"])
        add("decay", m, "n_weeks", "count", d["n_weeks"])
    for v, d in f.get("drift", {}).items():
        add("drift", v, "psi", "psi", d["psi"], flagged=d["flagged"])
        for b in f.get("drift_bins", {}).get(v, {}).get("bins", []):
            add("drift", f"{v}:{b['bin']}", "reference_share", "share", b["reference_share"])
            add("drift", f"{v}:{b['bin']}", "audit_share", "share", b["audit_share"])
    cal = f.get("calibration") or {}
    if cal:
        add("calibration", "confidence", "ece", "ece", cal.get("ece"), flagged=cal.get("flagged"))
        add("calibration", "confidence", "n", "count", cal.get("n"))
        for b in cal.get("bins", []):
            add("calibration", f"bin {b['bin']}", "accuracy", "share", b["accuracy"])
            add("calibration", f"bin {b['bin']}", "mean_confidence", "share", b["mean_confidence"])
    t = f.get("tier_agreement") or {}
    if t:
        for subject, d in (("1v2", t), ("1v3", t["tier3"]["vs_tier1"]), ("2v3", t["tier3"]["vs_tier2"])):
            add("tier_agreement", subject, "agreement", "share", d["agreement"])
            add("tier_agreement", subject, "kappa", "kappa", d["kappa"], flagged=t["flagged"] if subject == "1v2" else None)
            add("tier_agreement", subject, "n", "count", d["n"])
    al = f.get("alignment") or {}
    if al:
        for period in ("reference", "audit"):
            add("alignment", period, "corr", "corr", al[period]["corr"])
            add("alignment", period, "slope", "slope", al[period]["slope"], al[period]["ci_low"], al[period]["ci_high"],
                flagged=al["flagged"] if period == "audit" else None)
    for g in f.get("gaming", []):
        subject = f"{g['primary']}~{g['counter']}"
        add("gaming", subject, "counter_reference", "share", g["counter_reference"])
        add("gaming", subject, "counter_audit", "share", g["counter_audit"], flagged=g["flagged"])
        add("gaming", subject, "counter_diff", "diff", g["counter_diff"], g["counter_diff_ci_low"],
            g["counter_diff_ci_high"])
    dq = f.get("data_quality") or {}
    add("data_quality", "gates", "critical_failures", "count", dq.get("critical_failures", 0),
        flagged=dq.get("flagged"))
    add("decision", "contract", "score", "score", f.get("score"))
    return rows


def record(db_path: str | Path, findings: dict, gate: bool = True) -> str:
    """Store one audit (audit_records + audit_checks), run the audit gate; return its id."""
    con = _write_connection(db_path)
    try:
        audit_id = record_into(con, findings, gate=gate)
        con.execute("checkpoint")
    finally:
        con.close()
    return audit_id


def run_stage(con: duckdb.DuckDBPyConnection, log=None) -> str | None:
    """The run's audit stage (SPEC §5): audit the freshly built warehouse as of the day
    after its last data date and record it, unsigned, unless an audit with that as-of
    date is already recorded (history carries over, so a re-run of the same data adds
    nothing). The runner gates the stage (expectations/audit__*.json) under its run id.
    Returns the new audit id, or None when nothing was recorded (and says why)."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    try:
        as_of = default_as_of(con) if warehouse.table_exists(con, "l6_daily") else None
    except ValueError:
        as_of = None  # no interactions: run_audit below says so
    if as_of is not None and _recorded(con, as_of):  # decided before the costly findings
        say(f"[audit] an audit as of {as_of} is already recorded; not recording another")
        return None
    try:
        findings = run_audit(con, as_of)
    except ValueError as exc:  # e.g. fewer than the window's weeks of data: say so, not a failure
        say(f"[audit] not recorded: {exc}")
        return None
    as_of = findings["as_of"]
    audit_id = record_into(con, findings, gate=False)
    say(f"[audit] recorded {audit_id} as of {as_of} (verdict {findings.get('verdict')}, awaiting sign-off)")
    return audit_id


def _recorded(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> bool:
    if not warehouse.table_exists(con, "audit_records"):
        return False
    return bool(con.execute("select count(*) from audit_records where as_of = ?", [as_of]).fetchall()[0][0])


def record_into(con: duckdb.DuckDBPyConnection, findings: dict, gate: bool = True) -> str:
    """record() on an open write connection."""
    f = clean(findings)
    created = _now()
    audit_id = "audit-" + created.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    f = {**f, "audit_id": audit_id}
    con.execute(warehouse.sql_text("audit/schema.sql"))
    dq = f.get("data_quality") or {}
    values = {
        "audit_id": audit_id, "created_at": created, "as_of": f["as_of"],
        "window_start": f["window"]["start"], "window_end": f["window"]["end"],
        "reference_start": f["reference"]["start"], "reference_end": f["reference"]["end"],
        "data_last_date": (f.get("data") or {}).get("last_date"),
        "contract_version": f.get("contract_version"),
        "config_versions": json.dumps(f.get("config_versions")), "findings": json.dumps(f),
        "score": f.get("score"), "verdict": f.get("verdict"),
        "gate_runs": json.dumps([{k: r.get(k) for k in ("run_id", "status", "in_window", "built_this_warehouse",
                                                        "checks", "critical_failures", "warnings")}
                                 for r in dq.get("runs", [])]),
        "gate_success": None, "decision": None, "signed_by": None, "signed_at": None, "next_due": None,
    }
    con.execute(f"insert into audit_records ({', '.join(_RECORD_COLUMNS)}) "
                f"values ({', '.join('?' for _ in _RECORD_COLUMNS)})", [values[c] for c in _RECORD_COLUMNS])
    rows = check_rows(audit_id, f)
    if rows:
        con.executemany("insert into audit_checks values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if gate:
        success = _run_gate(con, audit_id)
        con.execute("update audit_records set gate_success = ? where audit_id = ?", [success, audit_id])
    return audit_id


def _run_gate(con, audit_id: str) -> bool:
    """The audit stage's gate (expectations/audit__*.json), recorded under the audit id."""
    from pipelines import gates

    try:
        outcome = gates.run_gate(con, "audit", audit_id)
    except Exception as exc:  # the gate could not run: say so, keep the record
        print(f"warning: the audit gate could not run: {str(exc).splitlines()[0] if str(exc) else exc}",
              file=sys.stderr)
        return False
    for f in outcome.failures + outcome.warnings:
        print(f"audit gate {f.get('severity')}: {f.get('message')}", file=sys.stderr)
    return bool(outcome.success)


def _record_dict(row: dict, with_findings: bool = True) -> dict:
    out = dict(row)
    for k in _JSON_COLUMNS:
        if k in out and isinstance(out[k], str):
            try:
                out[k] = json.loads(out[k])
            except ValueError:
                pass
    if not with_findings:
        out.pop("findings", None)
    return out


# Newest first = the latest audit date (as_of) first, then the latest recorded: an audit run
# today as of an earlier date (`audit --as-of`, a look back) is not "the latest audit", whose
# findings the page shows and a sign-off without an id applies to.
_NEWEST_FIRST = "as_of desc, created_at desc, audit_id desc"
_ORDERS = {"newest": _NEWEST_FIRST, "signed": "signed_at desc, " + _NEWEST_FIRST}  # allow-list


def _select(con, where: str = "", params: list | None = None, limit: int | None = None,
            columns: tuple = _RECORD_COLUMNS, order: str = "newest") -> list[dict]:
    if not warehouse.table_exists(con, "audit_records"):
        return []
    sql = (f"select {', '.join(columns)} from audit_records {where} "
           f"order by {_ORDERS[order]}" + (f" limit {int(limit)}" if limit else ""))
    return _rows(con.execute(sql, params or []))


def get(con: duckdb.DuckDBPyConnection, audit_id: str) -> dict | None:
    rows = _select(con, "where audit_id = ?", [audit_id])
    return _record_dict(rows[0]) if rows else None


def window_ending_between(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> dict | None:
    """The audit record (findings parsed) whose window ends latest in [start, end]; of
    several records of that window, the one of the latest audit date, then the newest
    recorded. None when there is none."""
    rows = _select(con, "where window_end between ? and ?", [start, end])  # newest first
    return _record_dict(max(rows, key=lambda r: r["window_end"])) if rows else None


def latest(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The latest audit (findings parsed): of the newest audit date (as_of), the last
    recorded; None when there is none. A back-dated audit recorded later is not it."""
    rows = _select(con, limit=1)
    return _record_dict(rows[0]) if rows else None


def history(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every audit record, newest audit date first, without the findings (but with the flag list)."""
    out = []
    for r in _select(con):
        d = _record_dict(r)
        f = d.pop("findings", None) or {}
        d["flags"] = f.get("flags", []) if isinstance(f, dict) else []
        d.pop("config_versions", None)
        out.append(d)
    return out


def next_due(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> dict | None:
    """When the next audit is due: the last signed-off audit's next_due. When no audit was
    ever signed, the first one falls due 8 weeks (cadence_days) after the first data date,
    and the result says so (`never_signed`)."""
    today = today or _today()
    cadence = int(contract()["audit"].get("cadence_days", 56))
    signed = _select(con, "where signed_at is not null", limit=1, order="signed")  # the last sign-off
    pending = _select(con, "where signed_at is null", limit=1)  # the unsigned audit of the latest date
    if signed:
        s = signed[0]
        due = s["next_due"]
        newer = pending and (pending[0]["as_of"], pending[0]["created_at"]) > (s["as_of"], s["created_at"])
        return {"next_due": due, "overdue": due < today, "days": (due - today).days, "audit_id": s["audit_id"],
                "signed_by": s["signed_by"], "signed_at": s["signed_at"], "decision": s["decision"],
                "never_signed": False, "awaiting_signoff": pending[0]["audit_id"] if newer else None,
                "note": f"audit {s['audit_id']} signed by {s['signed_by']} on {s['signed_at']:%Y-%m-%d}; "
                        f"the next is due {cadence} days later"}
    first = None
    if warehouse.table_exists(con, "l6_daily"):
        first = data_span(con)["first_date"]
    due = first + dt.timedelta(days=cadence) if first else None
    note = "no audit has ever been signed off"
    if pending:
        note += f"; audit {pending[0]['audit_id']} awaits sign-off"
    if due:
        note += f"; the first audit fell due {cadence} days after the first data date ({first})"
    return {"next_due": due, "overdue": bool(due and due < today), "days": (due - today).days if due else None,
            "audit_id": pending[0]["audit_id"] if pending else None, "signed_by": None, "signed_at": None,
            "decision": None, "never_signed": True, "awaiting_signoff": pending[0]["audit_id"] if pending else None,
            "note": note}


def sign(db_path: str | Path, audit_id: str | None, name: str, decision: str) -> dict:
    """Sign an audit off: signed_by, signed_at (UTC now), the decision, next_due = signed
    date + cadence_days (56). audit_id None: the latest audit."""
    if not name or not str(name).strip():
        raise ValueError("signing an audit needs the name of the person signing (--sign NAME)")
    if not decision or not str(decision).strip():
        raise ValueError("signing an audit needs a decision: --decision TEXT (e.g. keep, iterate, re-define)")
    cadence = int(contract()["audit"].get("cadence_days", 56))
    con = _write_connection(db_path)
    try:
        if not warehouse.table_exists(con, "audit_records"):
            raise ValueError("no audit has been recorded in this warehouse yet; run `python -m pipelines audit` first")
        rows = _select(con, "where audit_id = ?", [audit_id]) if audit_id else _select(con, limit=1)
        if not rows:
            raise ValueError(f"no audit {audit_id!r} in this warehouse" if audit_id else
                             "no audit has been recorded in this warehouse yet")
        row = rows[0]
        if row["signed_at"] is not None:
            raise ValueError(f"audit {row['audit_id']} was already signed by {row['signed_by']} on "
                             f"{row['signed_at']:%Y-%m-%d %H:%M} UTC; run a new audit to sign again")
        signed_at = _now()
        due = signed_at.date() + dt.timedelta(days=cadence)
        con.execute("update audit_records set signed_by = ?, signed_at = ?, decision = ?, next_due = ? "
                    "where audit_id = ?", [str(name).strip(), signed_at, str(decision).strip(), due,
                                           row["audit_id"]])
        con.execute("checkpoint")
        return get(con, row["audit_id"])
    finally:
        con.close()


# ====================================================================== CLI
def _output(rec: dict, schedule: dict | None) -> dict:
    f = rec.get("findings") or {}
    out = dict(f) if isinstance(f, dict) else {}
    for k in ("audit_id", "created_at", "score", "verdict", "gate_success", "decision", "signed_by",
              "signed_at", "next_due", "contract_version"):
        out[k] = rec.get(k)
    out["schedule"] = schedule
    return clean(out)


def text_report(out: dict) -> str:
    lines = [f"Metric audit {out.get('audit_id')} as of {out.get('as_of')} "
             f"(contract {out.get('contract_version')})",
             f"  audit window {out['window']['start']} .. {out['window']['end']}; "
             f"reference {out['reference']['start']} .. {out['reference']['end']}",
             f"  verdict: {out.get('verdict')} (score {out.get('score'):+g}); "
             f"{(out.get('scorecard') or {}).get('reason', '')}"]
    if out.get("signed_by"):
        lines.append(f"  signed by {out['signed_by']} at {out['signed_at']}: {out.get('decision')}; "
                     f"next audit due {out.get('next_due')}")
    else:
        lines.append("  not signed off yet (sign with --sign NAME --decision TEXT)")
    lines.append("Decay (slope per week, 95% interval, weeks to red):")
    for m, d in out.get("decay", {}).items():
        if d.get("slope_per_week") is None:
            lines.append(f"  {m:<21} n/a ({d.get('n_weeks')} week(s))")
            continue
        wk = ("" if d.get("weeks_to_red") is None else ", already red" if d["weeks_to_red"] == 0
              else f", red in {d['weeks_to_red']:.1f} wk")
        lines.append(f"  {m:<21} {d['slope_per_week']:+.4g} [{_fmt(d.get('ci_low'))}, {_fmt(d.get('ci_high'))}]"
                     f"{wk}{'  FLAG' if d.get('flagged') else ''}")
        sh = d.get("level_shift")
        if sh:
            lines.append(f"  {'':<21} level shift in the week of {sh['week_start']}: {sh['before']:.4g} → "
                         f"{sh['after']:.4g} (p {sh['p_value']:.2g}); slope since {_fmt(sh['since']['slope'])} "
                         f"[{_fmt(sh['since']['ci_low'])}, {_fmt(sh['since']['ci_high'])}]: {sh['since_words']}")
    lines.append("Input drift (PSI):")
    for v, d in out.get("drift", {}).items():
        lines.append(f"  {v:<21} {_fmt(d.get('psi'))} {d.get('band')}")
    cal = out.get("calibration") or {}
    lines.append(f"Calibration: ECE {_fmt(cal.get('ece'))} over {cal.get('n')} tier-2 verdicts "
                 f"(reference {_fmt((cal.get('reference') or {}).get('ece'))})")
    t = out.get("tier_agreement") or {}
    lines.append(f"Tier 1 vs 2: n {t.get('n')}, agreement {_fmt(t.get('agreement'))}, kappa {_fmt(t.get('kappa'))}")
    al = out.get("alignment") or {}
    lines.append(f"Alignment ({al.get('north_star')} vs {al.get('behavior')}): audit corr "
                 f"{_fmt((al.get('audit') or {}).get('corr'))} slope {_fmt((al.get('audit') or {}).get('slope'))}; "
                 f"reference corr {_fmt((al.get('reference') or {}).get('corr'))} slope "
                 f"{_fmt((al.get('reference') or {}).get('slope'))}{'  FLAG' if al.get('flagged') else ''}")
    lines.append("Anti-gaming:")
    for g in out.get("gaming", []):
        lines.append(f"  {g['primary']} {_fmt(g['primary_reference'])} -> {_fmt(g['primary_audit'])} vs "
                     f"{g['counter']} {_fmt(g['counter_reference'])} -> {_fmt(g['counter_audit'])}"
                     f"{'  FLAG' if g['flagged'] else ''}")
    dq = out.get("data_quality") or {}
    lines.append(f"Data quality: {dq.get('note')}")
    if out.get("notes"):
        lines.append("Notes:")
        lines += [f"  - {x}" for x in out["notes"]]
    if out.get("flags"):
        lines.append("Flags:")
        lines += [f"  - {x}" for x in out["flags"]]
    sched = out.get("schedule") or {}
    if sched.get("note"):
        lines.append(f"Schedule: {sched['note']}" + (f"; next due {sched['next_due']}"
                                                     + (" (OVERDUE)" if sched.get("overdue") else "")
                                                     if sched.get("next_due") else ""))
    return "\n".join(lines)


def cli(args) -> int:
    """`python -m pipelines audit --db PATH [--as-of DATE] [--format text|json] [--sign NAME --decision TEXT]`.

    Without --sign: run an audit, record it, print it (exit 1 when the audit gate fails).
    With --sign: sign the latest audit (run and record one first when --as-of is given or
    none exists) and print it."""
    db = Path(args.db)
    sign_as = getattr(args, "sign", None)
    decision = getattr(args, "decision", None)
    if sign_as is not None and not (decision or "").strip():
        raise ValueError("--sign needs --decision TEXT (the decision recorded with the sign-off, "
                         "e.g. --decision keep | iterate | re-define)")
    if decision and sign_as is None:
        raise ValueError("--decision is recorded only with a sign-off: add --sign NAME")
    if not db.exists():
        raise ValueError(f"warehouse {db} does not exist; build one with `python -m pipelines demo --db {db}`")
    as_of = getattr(args, "as_of", None)

    def read():
        return warehouse.connect(db, read_only=True)

    con = read()
    try:
        existing = latest(con)
    finally:
        con.close()
    audit_id = None
    if sign_as is None or as_of is not None or existing is None:
        con = read()
        try:
            findings = run_audit(con, as_of)
        finally:
            con.close()
        audit_id = record(db, findings)
    if sign_as is not None:
        rec = sign(db, audit_id or existing["audit_id"], sign_as, decision)
    con = read()
    try:
        rec = get(con, audit_id or rec["audit_id"]) if sign_as is None else get(con, rec["audit_id"])
        schedule = next_due(con)
    finally:
        con.close()
    out = _output(rec, schedule)
    if getattr(args, "format", "text") == "json":
        print(json.dumps(out, indent=1, default=str))
    else:
        print(text_report(out))
    return 1 if rec.get("gate_success") is False and sign_as is None else 0
