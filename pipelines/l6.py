"""The L6 table (SPEC §3, §7) for any grain and slice, from the warehouse."""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from pipelines import config, stats, warehouse

GRAINS = ("day", "week", "month", "quarter", "all")
# slice name -> query parameter (the allow-list of slice columns)
SLICES = {
    "feature": "features",
    "domain": "domains",
    "model_version": "model_versions",
    "segment": "segments",
    "experiment_group": "experiment_groups",
}
# a slice value that stands for "no value" (a user outside the experiment has no
# experiment_group): the queries match null user attributes to it (a bound parameter)
NULL_LABEL = "(none)"
CLI_COLUMNS = ["period_start", "tcr", "hr", "tta_p50_s", "tta_p90_s", "hitl_per_100",
               "retention_delta_pts", "cpvo_usd", "interactions"]


def _ratio(num, den):
    return None if not den else num / den


def query_params(by: str, filters: dict | None = None, date_from: dt.date | None = None,
                 date_to: dt.date | None = None, with_retention: bool = True) -> dict:
    if by not in GRAINS:
        raise ValueError(f"--by must be one of {', '.join(GRAINS)}; got {by!r}")
    filters = filters or {}
    unknown = set(filters) - set(SLICES)
    if unknown:
        raise ValueError(f"unknown slice(s) {sorted(unknown)}; allowed: {', '.join(SLICES)}")
    params = {p: None for p in SLICES.values()}
    for name, values in filters.items():
        if values is None or values == []:
            continue
        params[SLICES[name]] = [values] if isinstance(values, str) else list(values)
    params.update(
        grain="day" if by == "all" else by,
        is_all=by == "all",
        date_from=date_from,
        date_to=date_to,
        window_days=config.metric_contract()["retention"]["window_days"],
        with_retention=bool(with_retention),
        null_label=NULL_LABEL,
    )
    return params


def l6_table(con: duckdb.DuckDBPyConnection, by: str, filters: dict | None = None,
             date_from: dt.date | None = None, date_to: dt.date | None = None,
             with_retention: bool = True) -> pl.DataFrame:
    """One row per period: the six L6 metrics, their components and RΔ's interval.
    with_retention=False skips RΔ (null, group sizes 0): for views that do not show it."""
    params = query_params(by, filters, date_from, date_to, with_retention)
    raw = warehouse.run_query(con, "queries/l6.sql", params).pl()
    min_n = config.metric_contract()["retention"]["min_group_size"]
    rows = []
    for r in raw.iter_rows(named=True):
        diff, low, high = stats.diff_of_proportions(
            r["rd_retained_ai"], r["rd_n_ai"], r["rd_retained_non_ai"], r["rd_n_non_ai"])
        enough = r["rd_n_ai"] >= min_n and r["rd_n_non_ai"] >= min_n
        rows.append({
            "period_start": r["period_start"],
            "tcr": _ratio(r["completed"], r["interactions"]),
            "hr": _ratio(r["hallucinated"], r["adjudicated"]),
            "tta_p50_s": r["tta_p50_s"],
            "tta_p90_s": r["tta_p90_s"],
            "hitl_per_100": _ratio(100 * r["interventions"], r["interactions"]),
            "retention_delta_pts": 100 * diff if enough else None,
            "cpvo_usd": _ratio(r["cost_usd"] + r["infra_cost_usd"], r["valid"]),
            "interactions": r["interactions"],
            "hr_coverage": _ratio(r["adjudicated"], r["interactions"]),
            "tier3_hr": _ratio(r["tier3_hallucinated"], r["tier3_adjudicated"]),
            "tta_n": r["tta_n"],
            "rd_n_ai": r["rd_n_ai"],
            "rd_n_non_ai": r["rd_n_non_ai"],
            "rd_retention_ai": _ratio(r["rd_retained_ai"], r["rd_n_ai"]),
            "rd_retention_non_ai": _ratio(r["rd_retained_non_ai"], r["rd_n_non_ai"]),
            "rd_ci_low": 100 * low if enough else None,
            "rd_ci_high": 100 * high if enough else None,
            "completed": r["completed"],
            "adjudicated": r["adjudicated"],
            "hallucinated": r["hallucinated"],
            "valid": r["valid"],
            "interventions": r["interventions"],
            "cost_usd": r["cost_usd"],
            "infra_cost_usd": r["infra_cost_usd"],
        })
    schema = {
        "period_start": pl.Date, "tcr": pl.Float64, "hr": pl.Float64, "tta_p50_s": pl.Float64,
        "tta_p90_s": pl.Float64, "hitl_per_100": pl.Float64, "retention_delta_pts": pl.Float64,
        "cpvo_usd": pl.Float64, "interactions": pl.Int64, "hr_coverage": pl.Float64,
        "tier3_hr": pl.Float64, "tta_n": pl.Int64, "rd_n_ai": pl.Int64, "rd_n_non_ai": pl.Int64,
        "rd_retention_ai": pl.Float64, "rd_retention_non_ai": pl.Float64, "rd_ci_low": pl.Float64,
        "rd_ci_high": pl.Float64, "completed": pl.Int64, "adjudicated": pl.Int64,
        "hallucinated": pl.Int64, "valid": pl.Int64, "interventions": pl.Int64,
        "cost_usd": pl.Float64, "infra_cost_usd": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def with_status(table: pl.DataFrame, warnings: list[dict] | None = None) -> pl.DataFrame:
    """Add `<metric>_status` (green/amber/red/n/a), `<metric>_threshold` and
    `<metric>_warnings` (the served run's gate warnings on the metric's inputs, `; `-joined,
    empty when none: gates.served_warnings) columns."""
    out = table
    for metric in config.METRICS:
        touching = "; ".join(w["text"] for w in warnings or [] if metric in w["metrics"])
        out = out.with_columns(
            pl.Series(f"{metric}_status", [config.status(metric, v) for v in table[metric]], dtype=pl.Utf8),
            pl.lit(config.threshold_text(metric)).alias(f"{metric}_threshold"),
            pl.lit(touching, dtype=pl.Utf8).alias(f"{metric}_warnings"),
        )
    return out
