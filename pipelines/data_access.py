"""The ONE module the Streamlit pages read through.

Every public reader opens a short-lived read-only connection (a run swaps the
warehouse file atomically underneath, so a connection is never kept), is cached with
`st.cache_data` keyed by its arguments plus the warehouse file's mtime (a refresh or a
new run invalidates the cache by itself), and returns polars frames, dicts or lists.
Pages import this module, `charts`, `report` and `config` only: no SQL and no
statistics live in a page.

Every reader takes an optional keyword `db=` (default: `config.default_db()`, i.e.
$KPI_BRIDGE_DB or data/warehouse.duckdb).
"""
from __future__ import annotations

import ast
import contextlib
import datetime as dt
import functools
import importlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import streamlit as st

from pipelines import CONFIG_DIR, ROOT, SQL_DIR, bridge_metrics, config, stats, warehouse
from pipelines import l6 as l6_mod

SLICES: tuple[str, ...] = tuple(l6_mod.SLICES)  # feature, domain, model_version, segment, experiment_group
SLICE_LABELS = {"feature": "Feature", "domain": "Domain", "segment": "Segment",
                "model_version": "Model version", "experiment_group": "Experiment group"}
GRAINS = ("day", "week", "month", "quarter")
METRICS = config.METRICS
BRIDGE_MEASURES = bridge_metrics.MEASURES  # the bridge measures Explore offers beside the L6 metrics
SUPPORT_MEASURES, SUPPORT_NOTE = bridge_metrics.SUPPORT, bridge_metrics.SUPPORT_NOTE
bridge_assumptions_note, support_applies = bridge_metrics.assumptions_note, bridge_metrics.support_applies
EXPLORE_DEFAULT_METRICS = ("tcr", "hr")  # Explore's default view (pages/explore.py reads it too)
WARM_VALUES_PER_SLICE = 12  # warm-up: single-value filters per slice, at most
NULL_LABEL = l6_mod.NULL_LABEL  # how a null slice value (e.g. experiment_group) is shown and filtered


class WarehouseUnavailable(RuntimeError):
    """The warehouse file is missing, locked or holds no results; the message says what to do."""


# --------------------------------------------------------------------------------------
# plumbing
# --------------------------------------------------------------------------------------
def db_path(db: str | Path | None = None) -> Path:
    return Path(db) if db else config.default_db()


def _stamp(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def _connect(db: str):
    path = Path(db)
    if not path.exists():
        raise WarehouseUnavailable(
            f"The warehouse {path} does not exist yet. Build it with `python -m pipelines demo --db {path}` "
            "or restart the app to build the demo warehouse.")
    con = None
    for attempt in range(12):
        try:
            con = warehouse.connect(path, read_only=True)
            break
        except duckdb.IOException as exc:  # a writer (a run recording its history) holds the file
            if attempt == 11:
                raise WarehouseUnavailable(
                    f"The warehouse {path} is busy (a run is writing to it): {str(exc).splitlines()[0]}. "
                    "Reload the page in a moment.") from None
            time.sleep(0.1 * (attempt + 1))
    try:
        yield con
    finally:
        con.close()


def _frame(con, sql: str, params: dict | list | None = None) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table())


def _rows(con, sql: str, params: dict | list | None = None) -> list[dict]:
    cur = con.execute(sql, params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _tables(con) -> set[str]:
    return {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}


def _reader(fn):
    """`fn(db: str, stamp: int, *args)` -> public `fn(*args, db=None)`, cached per mtime."""
    cached = st.cache_data(show_spinner=False, max_entries=512)(fn)

    @functools.wraps(fn)
    def wrapper(*args, db: str | Path | None = None, **kwargs):
        path = db_path(db)
        return cached(str(path), _stamp(path), *args, **kwargs)

    wrapper.clear = cached.clear  # type: ignore[attr-defined]
    return wrapper


def clear_caches() -> None:
    st.cache_data.clear()


def _module(name: str):
    """A pipelines module imported on first use (gates, bridge, audit: they cost import time)."""
    return importlib.import_module(f"pipelines.{name}")


def _norm_filters(filters: dict | None) -> dict:
    """Drop empty slices; keep lists sorted so equal views share one cache entry."""
    out = {}
    for name, values in (filters or {}).items():
        if name not in SLICES:
            raise ValueError(f"unknown slice {name!r}; allowed: {', '.join(SLICES)}")
        if values in (None, [], ()):
            continue
        vals = [values] if isinstance(values, str) else list(values)
        out[name] = sorted(vals, key=str)
    return out


def _slice_sql(filters: dict, params: dict, alias: str = "") -> str:
    """A where-clause over allow-listed slice columns; null slice values match `(none)`, as
    in sql/queries/l6.sql (a bound null label matched by coalesce)."""
    clauses = []
    pre = f"{alias}." if alias else ""
    for name, values in filters.items():
        col = {s: s for s in SLICES}[name]  # allow-list lookup: identifiers never come from input
        params[f"f_{name}"] = list(values)
        params["null_label"] = NULL_LABEL
        clauses.append(f"list_contains($f_{name}, coalesce({pre}{col}, $null_label))")
    return " and ".join(clauses) if clauses else "true"


# --------------------------------------------------------------------------------------
# warehouse state, periods
# --------------------------------------------------------------------------------------
def warehouse_exists(db: str | Path | None = None) -> bool:
    return db_path(db).exists()


@_reader
def warehouse_info(db: str, stamp: int) -> dict:
    """What the warehouse holds: tables, results yes/no, data window, latest run."""
    info = {"path": db, "exists": Path(db).exists(), "has_results": False, "tables": [],
            "first_date": None, "last_date": None, "interactions": 0, "mtime": stamp}
    if not info["exists"]:
        return info
    with _connect(db) as con:
        tables = _tables(con)
        info["tables"] = sorted(tables)
        info["has_results"] = {"l6_daily", "int_interactions", "int_user_active_days"} <= tables
        if info["has_results"]:
            first, last, n = con.execute(
                "select min(activity_date), max(activity_date), coalesce(sum(interactions), 0) from l6_daily"
            ).fetchall()[0]
            info.update(first_date=first, last_date=last, interactions=int(n))
    return info


def quarter_start(d: dt.date) -> dt.date:
    return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def quarter_end(qs: dt.date) -> dt.date:
    nxt = dt.date(qs.year + (qs.month + 3 > 12), (qs.month + 2) % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def quarter_label(qs: dt.date) -> str:
    return f"{qs.year}Q{(qs.month - 1) // 3 + 1}"


def parse_quarter(label: str) -> dt.date:
    m = re.fullmatch(r"(\d{4})Q([1-4])", label.strip())
    if not m:
        raise ValueError(f"quarter must look like 2026Q3; got {label!r}")
    return dt.date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1)


def periods(db: str | Path | None = None) -> dict:
    """The quarters in the data: every quarter (newest first), the latest full one, the
    quarter to date (None when the data ends on a quarter's last day) and their predecessors."""
    info = warehouse_info(db=db)
    out = {"first_date": info["first_date"], "last_date": info["last_date"], "quarters": [],
           "full_quarter": None, "qtd": None}
    if not info["last_date"]:
        return out
    first, last = info["first_date"], info["last_date"]
    qs = quarter_start(first)
    quarters = []
    while qs <= last:
        qe = quarter_end(qs)
        quarters.append({"label": quarter_label(qs), "start": qs, "end": qe,
                         "complete": qe <= last, "data_from": max(qs, first), "data_to": min(qe, last)})
        qs = qe + dt.timedelta(days=1)
    for i, q in enumerate(quarters):
        q["previous"] = quarters[i - 1] if i > 0 else None
    full = [q for q in quarters if q["complete"]]
    out["full_quarter"] = full[-1] if full else None
    out["qtd"] = quarters[-1] if not quarters[-1]["complete"] else None
    out["quarters"] = list(reversed(quarters))
    return out


# --------------------------------------------------------------------------------------
# L6
# --------------------------------------------------------------------------------------
@_reader
def _l6_cached(db: str, stamp: int, by: str, filters: dict, date_from, date_to) -> pl.DataFrame:
    with _connect(db) as con:
        if not warehouse.table_exists(con, "l6_daily"):
            raise WarehouseUnavailable(
                "The warehouse holds no good results yet (its first run failed); see Data quality.")
        table = l6_mod.l6_table(con, by, filters or None, date_from, date_to)
    return l6_mod.with_status(table)


@_reader
def _l6_no_rd(db: str, stamp: int, by: str, filters: dict, date_from, date_to) -> pl.DataFrame:
    """`l6.l6_table(..., with_retention=False)`: everything but RΔ rolls up in milliseconds,
    while RΔ's cohorts over every active user-day take a second or more on a large warehouse."""
    with _connect(db) as con:
        if not warehouse.table_exists(con, "l6_daily"):
            raise WarehouseUnavailable(
                "The warehouse holds no good results yet (its first run failed); see Data quality.")
        table = l6_mod.l6_table(con, by, filters or None, date_from, date_to, with_retention=False)
    return l6_mod.with_status(table)


def l6(by: str, filters: dict | None = None, date_from: dt.date | None = None,
       date_to: dt.date | None = None, db: str | Path | None = None,
       metrics: list[str] | tuple[str, ...] | None = None) -> pl.DataFrame:
    """`l6.l6_table` + statuses (one row per period), the same numbers as `python -m pipelines l6`.

    `metrics`: the metrics the caller will show; without RΔ among them (and a calendar
    grain) the fast no-RΔ query answers, its RΔ columns null."""
    if by not in l6_mod.GRAINS:
        raise ValueError(f"grain must be one of {', '.join(l6_mod.GRAINS)}")
    filters = _norm_filters(filters)  # `(none)`: rows whose user has no value (l6.NULL_LABEL)
    if metrics is not None and "retention_delta_pts" not in metrics and by in GRAINS:
        return _l6_no_rd(by, filters, date_from, date_to, db=db)
    return _l6_cached(by, filters, date_from, date_to, db=db)


@_reader
def _bridge_metrics_cached(db: str, stamp: int, by: str, filters: dict, date_from, date_to) -> pl.DataFrame:
    with _connect(db) as con:
        if not warehouse.table_exists(con, "tickets_daily"):
            raise WarehouseUnavailable(
                "This warehouse was built before the bridge measures existed (no tickets_daily table): "
                "rebuild it with `python -m pipelines run --source DIR` or `python -m pipelines demo`.")
        if not con.execute("select count(*) from information_schema.columns where table_name = 'tickets_daily' "
                           "and column_name = 'user_known'").fetchall()[0][0]:
            raise WarehouseUnavailable(
                "This warehouse was built before tickets told known users from unknown ones (tickets_daily has no "
                "user_known column): rebuild it with `python -m pipelines run --source DIR` or "
                "`python -m pipelines demo`.")
        return bridge_metrics.table(con, by, filters or None, date_from, date_to)


def explore(by: str, filters: dict | None = None, date_from: dt.date | None = None,
            date_to: dt.date | None = None, metrics: list[str] | tuple[str, ...] = (),
            db: str | Path | None = None) -> pl.DataFrame:
    """What Explore charts: one row per period with the L6 metrics (and statuses) and, when
    `metrics` holds any, the bridge measures (`bridge_metrics.MEASURES`) of the same slice.
    Periods with tickets but no selected interaction (a holdout slice) come with the L6
    columns null."""
    l6_metrics = [m for m in metrics if m in METRICS]
    table = l6(by, filters, date_from, date_to, db=db, metrics=l6_metrics)
    if not any(m in bridge_metrics.MEASURES for m in metrics):
        return table
    extra = _bridge_metrics_cached(by, _norm_filters(filters), date_from, date_to, db=db)
    extra = extra.select(["period_start", *bridge_metrics.MEASURES, "ce_n", "tickets"])
    return table.join(extra, on="period_start", how="full", coalesce=True).sort("period_start")


def warm_up(db: str | Path | None = None) -> dict:
    """Fill the caches the pages read first (Home, QBR, Explore's default view, Data quality,
    Bridge, Audit) so the first visitor does not wait for the cold queries. Returns timings."""
    t0, out = time.perf_counter(), {}

    def step(name, fn):
        t = time.perf_counter()
        try:
            fn()
            out[name] = round(time.perf_counter() - t, 2)
        except Exception as exc:  # warm-up is best effort: the page will explain the problem
            out[name] = f"skipped: {type(exc).__name__}"

    info = warehouse_info(db=db)
    if not info.get("has_results") or not info.get("interactions"):
        return {"skipped": "no results"}
    step("slices", lambda: slice_options(db=db))
    p = periods(db=db)
    q = p["full_quarter"] or p["qtd"]
    for key in ("full_quarter", "qtd"):  # Home first: its two scorecards (L6 by quarter, the
        if p[key]:                       # quarter's weeks, its last 28 days)
            step(f"scorecard_{key}", lambda key=key: scorecard(p[key]["label"], db=db))
    step("explore_default", lambda: l6("week", db=db, metrics=list(EXPLORE_DEFAULT_METRICS)))
    if q:  # the QBR's other reads
        step("hr_by_domain", lambda: hr_by_domain(q["start"], q["end"], db=db))
        step("bridge", lambda: bridge_report(q["label"], db=db))
    step("gates", lambda: (gate_report(db=db), gate_history(db=db), runs(db=db)))
    step("audit", lambda: audit_state(db=db))
    step("l6_week", lambda: l6("week", db=db))  # Explore with RΔ by week, the whole span
    # then Explore's likeliest next clicks: the default metrics at every grain, and each
    # single slice value at the default grain (a few dozen roll-ups of l6_daily and TTA scans)
    default = list(EXPLORE_DEFAULT_METRICS)
    step("explore_grains", lambda: [l6(g, db=db, metrics=default) for g in GRAINS])
    opts = slice_options(db=db)
    step("explore_single_filters", lambda: [l6("week", {s: [v]}, db=db, metrics=default)
                                            for s in SLICES for v in opts[s][:WARM_VALUES_PER_SLICE]])
    out["total"] = round(time.perf_counter() - t0, 2)
    return out


def period_bounds(period_start: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """First and last date of the period that starts on `period_start` at a grain."""
    if grain == "day":
        return period_start, period_start
    if grain == "week":
        return period_start, period_start + dt.timedelta(days=6)
    if grain == "month":
        nxt = dt.date(period_start.year + (period_start.month == 12), period_start.month % 12 + 1, 1)
        return period_start, nxt - dt.timedelta(days=1)
    if grain == "quarter":
        return period_start, quarter_end(period_start)
    raise ValueError(f"grain must be one of {', '.join(GRAINS)}")


def metric_meta(metric: str) -> dict:
    m = config.metric_contract()["metrics"][metric]
    return {"metric": metric, "label": m["label"], "unit": m["unit"], "direction": m["direction"],
            "green": m["green"], "red": m["red"], "green_op": m["green_op"], "red_op": m["red_op"],
            "note": m.get("note", ""), "threshold": config.threshold_text(metric)}


def _change(metric: str, value, prev) -> dict:
    """Change against the previous period in display units (points for shares)."""
    if value is None or prev is None:
        return {"change": None, "better": None}
    unit = config.metric_contract()["metrics"][metric]["unit"]
    diff = (value - prev) * (100 if unit == "share" else 1)
    higher = config.metric_contract()["metrics"][metric]["direction"] == "higher"
    better = None if diff == 0 else (diff > 0) == higher
    return {"change": diff, "better": better}


RECENT_DAYS = 28  # the scorecard's "how the quarter ended" window


def scorecard(quarter: str, filters: dict | None = None, db: str | Path | None = None) -> dict:
    """The six L6 metrics of a quarter (value, status, threshold, change vs the previous
    quarter, weekly values for a sparkline) + coverage and RΔ group sizes."""
    qs = parse_quarter(quarter)
    qe = quarter_end(qs)
    quarters = l6("quarter", filters, db=db)
    by_q = {r["period_start"]: r for r in quarters.iter_rows(named=True)}
    row = by_q.get(qs)
    prev_qs = quarter_start(qs - dt.timedelta(days=1))
    prev = by_q.get(prev_qs)
    wk = weeks_of(quarter, filters, db=db)
    info = warehouse_info(db=db)
    last = info["last_date"]
    # the quarter's last RECENT_DAYS days of data, when the quarter holds twice as many: a
    # quarter's average can hide where it ended (a drop in its last month)
    recent_to = min(qe, last) if last and row else None
    recent_from = recent_to - dt.timedelta(days=RECENT_DAYS - 1) if recent_to else None
    recent = None
    if recent_to and (recent_to - qs).days + 1 >= 2 * RECENT_DAYS:
        table = l6("all", filters, recent_from, recent_to, db=db)
        recent = table.row(0, named=True) if table.height else None
    metrics = []
    for m in METRICS:
        meta = metric_meta(m)
        value = row[m] if row else None
        pv = prev[m] if prev else None
        rv = recent[m] if recent else None
        metrics.append({
            **meta,
            "value": value,
            "status": config.status(m, value),
            "previous": pv,
            "previous_status": config.status(m, pv),
            **_change(m, value, pv),
            "weekly": [w for w in wk[m].to_list()],
            "weeks": wk["period_from"].to_list(),  # each sparkline point's first day (weeks_of)
            "recent": rv,
            "recent_status": config.status(m, rv),
        })
    return {
        "quarter": quarter, "start": qs, "end": qe,
        "to_date": bool(last and last < qe), "data_to": min(qe, last) if last else None,
        "previous_quarter": quarter_label(prev_qs) if prev else None,
        "has_data": row is not None,
        "row": row, "previous_row": prev, "metrics": metrics,
        "recent_from": recent_from if recent else None, "recent_to": recent_to if recent else None,
    }


def weeks_of(quarter: str, filters: dict | None = None, db: str | Path | None = None) -> pl.DataFrame:
    """The weekly L6 rows of a quarter's own days: ISO weeks cut at the quarter's edges and
    at the data's first and last date (so the first and last week may hold fewer than 7
    days, and none reaches into a neighboring quarter). `period_from`/`period_to`: the
    days each row covers; `days`: how many."""
    qs = parse_quarter(quarter)
    qe = quarter_end(qs)
    weeks = l6("week", filters, qs, qe, db=db)
    span = periods(db=db)
    first = max(qs, span["first_date"]) if span["first_date"] else qs
    last = min(qe, span["last_date"]) if span["last_date"] else qe
    return weeks.with_columns(
        period_from=pl.max_horizontal(pl.col("period_start"), pl.lit(first)),
        period_to=pl.min_horizontal(pl.col("period_start") + pl.duration(days=6), pl.lit(last)),
    ).with_columns(days=(pl.col("period_to") - pl.col("period_from")).dt.total_days() + 1)


@_reader
def hr_by_domain(db: str, stamp: int, date_from: dt.date | None, date_to: dt.date | None,
                 filters: dict | None = None) -> pl.DataFrame:
    """HR per domain (final verdicts, SPEC §3) with a 95% Wilson interval and status."""
    filters = _norm_filters(filters)
    params: dict[str, Any] = {"date_from": date_from, "date_to": date_to}
    where = _slice_sql(filters, params)
    with _connect(db) as con:
        df = _frame(con, f"""
            select domain,
                   cast(sum(interactions) as bigint) as interactions,
                   cast(sum(adjudicated) as bigint) as adjudicated,
                   cast(sum(hallucinated) as bigint) as hallucinated
            from l6_daily
            where ($date_from is null or activity_date >= $date_from)
              and ($date_to is null or activity_date <= $date_to)
              and {where}
            group by domain order by domain""", params)
    rows = []
    for r in df.iter_rows(named=True):
        hr = r["hallucinated"] / r["adjudicated"] if r["adjudicated"] else None
        lo, hi = stats.wilson(r["hallucinated"], r["adjudicated"])
        rows.append({**r, "hr": hr, "hr_ci_low": lo, "hr_ci_high": hi,
                     "coverage": r["adjudicated"] / r["interactions"] if r["interactions"] else None,
                     "status": config.status("hr", hr)})
    schema = {"domain": pl.Utf8, "interactions": pl.Int64, "adjudicated": pl.Int64, "hallucinated": pl.Int64,
              "hr": pl.Float64, "hr_ci_low": pl.Float64, "hr_ci_high": pl.Float64, "coverage": pl.Float64,
              "status": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


@_reader
def slice_options(db: str, stamp: int) -> dict[str, list[str]]:
    """Distinct values of each slice among the interactions, then NULL_LABEL when some have
    none (a user outside the experiment has no experiment_group)."""
    out = {s: [] for s in SLICES}
    with _connect(db) as con:
        if not warehouse.table_exists(con, "l6_daily"):
            return out
        for s in SLICES:  # allow-listed identifiers
            rows = con.execute(f"select distinct {s} from l6_daily order by {s} nulls last").fetchall()
            out[s] = [str(r[0]) if r[0] is not None else NULL_LABEL for r in rows]
    return out


# --------------------------------------------------------------------------------------
# drill-down: the interactions behind a number
# --------------------------------------------------------------------------------------
VERDICTS = ("any", "hallucinated", "not hallucinated", "no verdict")
DRILL_COLUMNS = ["interaction_id", "ts", "user_id", "feature", "domain", "segment", "model_version",
                 "experiment_group", "outcome", "tier1_hallucinated", "tier2_hallucinated",
                 "tier3_hallucinated", "final_verdict", "is_valid", "tta_s", "n_interventions",
                 "intervention_kinds", "intervention_s", "cost_usd"]


@_reader
def interactions_page(db: str, stamp: int, filters: dict | None, date_from: dt.date | None,
                      date_to: dt.date | None, page: int = 1, page_size: int = 50,
                      outcome: str | None = None, verdict: str = "any") -> dict:
    """One page of the interactions behind a number: {"rows": polars, "total", "pages", "page"}."""
    filters = _norm_filters(filters)
    page_size = max(1, min(int(page_size), 500))
    params: dict[str, Any] = {"date_from": date_from, "date_to": date_to, "outcome": outcome}
    where = _slice_sql(filters, params, "i")
    verdict_sql = {"any": "true", "hallucinated": "i.is_hallucinated",
                   "not hallucinated": "not i.is_hallucinated", "no verdict": "i.is_hallucinated is null"}[verdict]
    base = f"""
        from int_interactions as i
        where ($date_from is null or i.activity_date >= $date_from)
          and ($date_to is null or i.activity_date <= $date_to)
          and ($outcome is null or i.outcome = $outcome)
          and {verdict_sql}
          and {where}"""
    with _connect(db) as con:
        if not warehouse.table_exists(con, "int_interactions"):
            raise WarehouseUnavailable("The warehouse holds no interactions yet.")
        total = con.execute(f"select count(*) {base}", params).fetchall()[0][0]
        pages = max(1, math.ceil(total / page_size))
        page = max(1, min(int(page), pages))
        params.update(lim=page_size, off=(page - 1) * page_size)
        rows = _frame(con, f"""
            with page as (
                select i.* {base}
                order by i.ts, i.interaction_id
                limit $lim offset $off
            ),
            kinds as (
                select v.interaction_id, string_agg(v.kind, ', ' order by v.ts) as intervention_kinds
                from stg_interventions as v
                where v.interaction_id in (select interaction_id from page)
                group by v.interaction_id
            )
            -- what happened first (outcome, verdicts, interventions: at 1280 px a grid shows
            -- about eight columns before it scrolls), then who and where
            select page.interaction_id, page.ts, page.outcome,
                   case when page.is_hallucinated is null then 'no verdict'
                        when page.is_hallucinated then 'hallucinated (tier ' || page.final_tier || ')'
                        else 'ok (tier ' || page.final_tier || ')' end as final_verdict,
                   page.n_interventions, coalesce(kinds.intervention_kinds, '') as intervention_kinds,
                   page.is_valid, page.tta_s,
                   page.feature, page.domain, page.segment, page.model_version, page.experiment_group,
                   page.user_id, page.tier1_hallucinated, page.tier2_hallucinated, page.tier3_hallucinated,
                   page.intervention_s, page.cost_usd
            from page left join kinds using (interaction_id)
            order by page.ts, page.interaction_id""", params)
    return {"rows": rows, "total": int(total), "pages": pages, "page": page, "page_size": page_size}


# --------------------------------------------------------------------------------------
# runs, gates, quarantine
# --------------------------------------------------------------------------------------
@_reader
def runs(db: str, stamp: int, limit: int = 50) -> pl.DataFrame:
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_runs"):
            return pl.DataFrame()
        return _frame(con, """select run_id, command, source, as_of, started_at, finished_at, status,
                                     failed_stage, message, stage_seconds
                              from meta_runs order by started_at desc nulls last limit $limit""",
                      {"limit": int(limit)})


def latest_run(db: str | Path | None = None) -> dict | None:
    df = runs(db=db)
    return df.row(0, named=True) if df.height else None


def last_good_run(db: str | Path | None = None) -> dict | None:
    df = runs(db=db)
    ok = df.filter(pl.col("status") == "success") if df.height else df
    return ok.row(0, named=True) if ok.height else None


def run_banner(db: str | Path | None = None) -> dict | None:
    """When the latest run did not succeed: what failed and which good results are shown."""
    if not warehouse_exists(db):
        return None
    last = latest_run(db=db)
    if not last or last["status"] in ("success", "running"):
        return None
    good = last_good_run(db=db)
    return {"run_id": last["run_id"], "status": last["status"], "failed_stage": last["failed_stage"],
            "message": last["message"] or "", "started_at": last["started_at"],
            "good_run_id": good["run_id"] if good else None,
            "good_finished_at": good["finished_at"] if good else None}


@_reader
def served_warnings(db: str, stamp: int) -> list[dict]:
    """Gate warnings of the run whose results are served, each with the metrics it touches."""
    with _connect(db) as con:
        return _module("gates").served_warnings(con)


def metric_warnings(metric: str, db: str | Path | None = None) -> list[dict]:
    """The served run's gate warnings that touch one L6 metric or bridge measure (each with
    its "stage", "table", "expectation" and "text", a sentence)."""
    if not warehouse_exists(db):
        return []
    return [w for w in served_warnings(db=db) if metric in w["metrics"]]


def metric_inputs(metric: str) -> tuple[str, ...]:
    """The telemetry tables an L6 metric (metric_contract.toml `inputs`) or a bridge measure
    (bridge_metrics.INPUTS) is computed from."""
    if metric in config.METRICS:
        return tuple(config.metric_inputs(metric))
    return tuple(bridge_metrics.INPUTS.get(metric, ()))


def freshness(db: str | Path | None = None) -> dict | None:
    """When a served gate warning says the data stop short of the run (`applies_to` =
    "data_span", e.g. freshness_ts): {last_date, as_of, days, warnings}; None otherwise.
    It concerns the dates after the data, not the values of the periods they cover."""
    if not warehouse_exists(db):
        return None
    warned = [w["text"] for w in served_warnings(db=db) if w.get("applies_to") == "data_span"]
    good = last_good_run(db=db) if warned else None
    if not warned or not good:
        return None
    last, as_of = periods(db=db)["last_date"], good["as_of"]
    as_of = as_of.date() if isinstance(as_of, dt.datetime) else as_of
    return {"last_date": last, "as_of": as_of, "days": (as_of - last).days if as_of and last else None,
            "warnings": warned}


@_reader
def gate_report(db: str, stamp: int) -> dict:
    """The latest run's gate report (`gates.latest_report`), or {"available": False, "reason"}."""
    gates = _module("gates")
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_gate_results"):
            return {"available": False, "reason": "No run of this warehouse recorded gate results yet "
                                                   "(it was built without gates)."}
        try:
            report = gates.latest_report(con)
        except Exception as exc:  # a report the gate module cannot build is explained, not raised
            return {"available": False, "reason": f"The gate report could not be read: {exc}"}
    return {"available": True, **(report or {})}


@_reader
def gate_results(db: str, stamp: int, run_id: str | None = None) -> pl.DataFrame:
    """meta_gate_results rows of one run (default: the latest run that has any)."""
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_gate_results"):
            return pl.DataFrame()
        if run_id is None:
            got = con.execute("select run_id from meta_gate_results where stage <> 'audit' "
                              "order by evaluated_at desc limit 1").fetchall()
            if not got:
                return pl.DataFrame()
            run_id = got[0][0]
        df = _frame(con, "select * from meta_gate_results where run_id = $run_id order by stage, success, expectation",
                    {"run_id": run_id})
    return df.with_columns(pl.col(c).cast(pl.Utf8) for c in ("observed_value", "sample_values") if c in df.columns)


@_reader
def gate_history(db: str, stamp: int) -> pl.DataFrame:
    """Per run × stage: expectations evaluated, passed, failed critical, failed warnings."""
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_gate_results"):
            return pl.DataFrame()
        cols = {r[0] for r in con.execute("describe meta_gate_results").fetchall()}
        sev = "severity = 'critical'" if "severity" in cols else "true"
        return _frame(con, f"""
            select g.run_id, min(g.evaluated_at) as evaluated_at, g.stage,
                   count(*) as expectations,
                   count(*) filter (where g.success) as passed,
                   count(*) filter (where not g.success and {sev}) as failed_critical,
                   count(*) filter (where not g.success and not ({sev})) as failed_warning,
                   any_value(r.status) as run_status
            from meta_gate_results as g
            left join meta_runs as r using (run_id)
            group by g.run_id, g.stage
            order by evaluated_at, g.stage""")


def _latest_summary_run(con) -> str | None:
    """The latest run that recorded an ingest summary (it got through staging)."""
    got = con.execute("""select s.run_id from meta_ingest_summary s join meta_runs r using (run_id)
                         group by s.run_id order by max(r.started_at) desc limit 1""").fetchall()
    return got[0][0] if got else None


@_reader
def quarantine_summary(db: str, stamp: int, run_id: str | None = None) -> pl.DataFrame:
    """Quarantine counts by table, reason and column for one run (default: latest with a summary)."""
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_quarantine_summary"):
            return pl.DataFrame()
        run_id = run_id or _latest_summary_run(con)
        if run_id is None:
            return pl.DataFrame()
        return _frame(con, """select run_id, table_name, reason, column_name, n from meta_quarantine_summary
                              where run_id = $run_id order by n desc, table_name, reason""", {"run_id": run_id})


@_reader
def quarantine_history(db: str, stamp: int) -> pl.DataFrame:
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_quarantine_summary"):
            return pl.DataFrame()
        return _frame(con, """select q.run_id, r.started_at, q.table_name, q.reason, sum(q.n) as n
                              from meta_quarantine_summary q left join meta_runs r using (run_id)
                              group by all order by r.started_at, q.table_name, q.reason""")


@_reader
def ingest_summary(db: str, stamp: int, run_id: str | None = None) -> pl.DataFrame:
    with _connect(db) as con:
        if not warehouse.table_exists(con, "meta_ingest_summary"):
            return pl.DataFrame()
        run_id = run_id or _latest_summary_run(con)
        if run_id is None:
            return pl.DataFrame()
        return _frame(con, """select run_id, table_name, rows_read, rows_kept, rows_deduplicated, rows_quarantined
                              from meta_ingest_summary where run_id = $run_id order by table_name""",
                      {"run_id": run_id})


@_reader
def quarantine_samples(db: str, stamp: int, table_name: str, reason: str, limit: int = 5) -> pl.DataFrame:
    """A few quarantined rows (as JSON) of a table and reason, from the live warehouse."""
    with _connect(db) as con:
        if not warehouse.table_exists(con, "quarantine"):
            return pl.DataFrame()
        return _frame(con, """select table_name, reason, column_name, row_json from quarantine
                              where table_name = $t and reason = $r limit $n""",
                      {"t": table_name, "r": reason, "n": int(limit)})


# --------------------------------------------------------------------------------------
# KPI bridge (pipelines/bridge.py)
# --------------------------------------------------------------------------------------
def _unavailable(what: str, exc: Exception | None = None) -> dict:
    msg = f"{what}"
    if exc is not None:
        msg += f": {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return {"available": False, "reason": msg}


@_reader
def bridge_quarters(db: str, stamp: int) -> list[str]:
    bridge = _module("bridge")
    with _connect(db) as con:
        try:
            return [str(q) for q in bridge.quarters(con)]
        except Exception:
            return []


@_reader
def bridge_report(db: str, stamp: int, quarter: str) -> dict:
    """`bridge.report(con, quarter)` + {"available": True}, or {"available": False, "reason"}."""
    bridge = _module("bridge")
    with _connect(db) as con:
        try:
            rep = bridge.report(con, quarter)
        except Exception as exc:  # e.g. a quarter without a holdout comparison
            return _unavailable(f"The KPI bridge for {quarter} could not be estimated", exc)
    if not rep:
        return _unavailable(f"The KPI bridge has no estimates for {quarter}")
    return {"available": True, **_jsonable(rep)}


@_reader
def what_if(db: str, stamp: int, quarter: str, chain: str, new_value: float) -> dict:
    bridge = _module("bridge")
    with _connect(db) as con:
        try:
            res = bridge.what_if(con, quarter, chain, new_value)
        except Exception as exc:
            return _unavailable(f"The what-if for {chain} could not be computed", exc)
    return {"available": True, **_jsonable(res)}


def _jsonable(obj):
    """Plain python (dicts, lists, floats, str) so cached results pickle and pages can render them."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, pl.DataFrame):
        return obj.to_dicts()
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return obj.item()
        except Exception:
            return obj
    return obj


# --------------------------------------------------------------------------------------
# metric audit (pipelines/audit.py)
# --------------------------------------------------------------------------------------
@_reader
def audit_state(db: str, stamp: int) -> dict:
    """{"available", "reason", "latest", "history", "next_due"}."""
    audit = _module("audit")
    out: dict[str, Any] = {"available": True, "reason": "", "latest": None, "history": [], "next_due": None}
    with _connect(db) as con:
        for key, fn in (("latest", "latest"), ("history", "history"), ("next_due", "next_due")):
            try:
                out[key] = _jsonable(getattr(audit, fn)(con))
            except Exception as exc:  # e.g. the audit table does not exist yet
                out.setdefault("errors", []).append(f"{fn}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return out


@_reader
def audit_for_quarter(db: str, stamp: int, quarter: str) -> dict | None:
    """The recorded audit whose 8-week window ends latest inside the quarter (of those, the
    newest record; findings parsed), or None: the audit a QBR of that quarter reports on."""
    qs = parse_quarter(quarter)
    with _connect(db) as con:
        return _jsonable(_module("audit").window_ending_between(con, qs, quarter_end(qs)))


def audit_score_range() -> dict:
    """The audit's weighted-score scale under the current contract (audit.score_range)."""
    return _module("audit").score_range()


def audit_due(db: str | Path | None = None) -> dict | None:
    """{"next_due", "overdue", "days"} once an audit exists, else None."""
    if not warehouse_exists(db):
        return None
    state = audit_state(db=db)
    nd = state.get("next_due") if state.get("available") else None
    if not nd or not nd.get("next_due"):
        return None
    due = nd["next_due"]
    if isinstance(due, str):
        due = dt.date.fromisoformat(due[:10])
    elif isinstance(due, dt.datetime):
        due = due.date()
    today = dt.datetime.now(dt.UTC).date()  # recomputed on every call: the cache holds the due date only
    return {**nd, "next_due": due, "days": (due - today).days, "overdue": due < today}


def run_audit(as_of: dt.date | None = None, db: str | Path | None = None) -> str:
    """Run the audit and record it (a write: not cached; clears the caches); its audit id."""
    audit = _module("audit")
    path = db_path(db)
    with _connect(str(path)) as con:
        findings = audit.run_audit(con, as_of)
    audit_id = audit.record(path, findings)
    clear_caches()
    return str(audit_id)


def latest_audit_date(last_date: dt.date) -> dt.date:
    """audit.latest_audit_date: the audit form's last choosable date."""
    return _module("audit").latest_audit_date(last_date)


def sign_audit(audit_id: Any, name: str, decision: str, db: str | Path | None = None) -> Any:
    audit = _module("audit")
    res = audit.sign(db_path(db), audit_id, name, decision)
    clear_caches()
    return res


# --------------------------------------------------------------------------------------
# definitions: read from the project's own files at run time
# --------------------------------------------------------------------------------------
# which component columns and which l6.sql steps compute each metric
_METRIC_SOURCES = {
    "tcr": {"components": ["interactions", "completed"], "ctes": ["components"]},
    "hr": {"components": ["adjudicated", "hallucinated"], "ctes": ["components"]},
    "tta_p50_s": {"components": ["tta_n"], "ctes": ["tta"]},
    "hitl_per_100": {"components": ["interactions", "interventions"], "ctes": ["components"]},
    "retention_delta_pts": {"components": [],
                            "ctes": ["active_days", "last_active", "slice_users", "ai_users", "active_in_period",
                                     "non_ai_users", "cohorts", "eligible", "retention"]},
    "cpvo_usd": {"components": ["cost_usd", "valid"], "ctes": ["components", "infra"]},
}
_SPEC_NAMES = {"tcr": "TCR", "hr": "HR", "tta_p50_s": "TTA", "hitl_per_100": "HitL-F",
               "retention_delta_pts": "RΔ", "cpvo_usd": "CPVO"}


def _files_stamp() -> tuple:
    files = [CONFIG_DIR / "metric_contract.toml", SQL_DIR / "queries" / "l6.sql",
             SQL_DIR / "metrics" / "l6_daily.sql", SQL_DIR / "metrics" / "int_interactions.sql",
             Path(l6_mod.__file__), _spec_path() or Path("/nonexistent")]
    return tuple((str(f), _stamp(f)) for f in files)


def _spec_path() -> Path | None:
    for p in (ROOT / "SPEC.md", ROOT / "docs" / "SPEC.md", ROOT.parent / "shared" / "SPEC.md"):
        if p.exists():
            return p
    return None


def _cte(sql: str, name: str) -> str | None:
    """The text of one `name as ( ... )` step of a query file."""
    m = re.search(rf"(^|\n)({re.escape(name)} as \()", sql)
    if not m:
        return None
    start = m.start(2)
    depth, i = 0, m.end(2) - 1
    while i < len(sql):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return sql[start:i + 1]
        i += 1
    return None


def _formula_lines(metric: str) -> list[str]:
    """The lines of l6.l6_table that finish the metric from its components."""
    src = Path(l6_mod.__file__).read_text()
    tree = ast.parse(src)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value in (metric, "tta_p90_s" if metric == "tta_p50_s" else None,
                                                              "rd_ci_low" if metric == "retention_delta_pts" else None):
                    seg = ast.get_source_segment(src, v) or ""
                    if not seg.startswith("pl."):  # skip the schema dict
                        out.append(f'"{k.value}": {seg}')
    if metric == "retention_delta_pts":
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign,)) and any(isinstance(t, ast.Tuple) for t in node.targets):
                seg = ast.get_source_segment(src, node)
                if seg and "diff_of_proportions" in seg:
                    out.insert(0, seg)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "enough" for t in node.targets):
                out.insert(1, ast.get_source_segment(src, node))
    return out


def _spec_definitions() -> dict[str, str]:
    p = _spec_path()
    if not p:
        return {}
    text = p.read_text()
    sec = text.split("## 3.", 1)[-1].split("\n## ", 1)[0]
    out = {}
    for metric, name in _SPEC_NAMES.items():
        m = re.search(rf"^- \*\*{re.escape(name)}\*\*.*?(?=^- \*\*|^Thresholds|\Z)", sec, re.S | re.M)
        if m:
            out[metric] = re.sub(r"\s*\n\s*", " ", m.group(0)[2:].strip())
    for key, name in (("final_verdict", "Final hallucination verdict"), ("valid_output", "Valid output")):
        m = re.search(rf"^- \*\*{re.escape(name)}\*\*.*?(?=^- \*\*|\Z)", sec, re.S | re.M)
        if m:
            out[key] = re.sub(r"\s*\n\s*", " ", m.group(0)[2:].strip())
    return out


@st.cache_data(show_spinner=False)
def _definitions(stamp: tuple) -> dict:
    l6_sql = (SQL_DIR / "queries" / "l6.sql").read_text()
    daily_sql = (SQL_DIR / "metrics" / "l6_daily.sql").read_text()
    spec = _spec_definitions()
    metrics = []
    for m in METRICS:
        meta = metric_meta(m)
        comp_lines = [ln.strip() for ln in daily_sql.splitlines()
                      if any(re.search(rf"\bas {c}\b", ln) for c in _METRIC_SOURCES[m]["components"])]
        ctes = [c for c in (_cte(l6_sql, n) for n in _METRIC_SOURCES[m]["ctes"]) if c]
        metrics.append({**meta,
                        "definition": spec.get(m) or (meta["label"] + (f" — {meta['note']}" if meta["note"] else "")),
                        "definition_source": "SPEC.md §3" if m in spec else "config/metric_contract.toml",
                        "formula": _formula_lines(m),
                        "daily_sql": "\n".join(comp_lines),
                        "query_sql": "\n\n".join(ctes)})
    return {"metrics": metrics, "spec_path": str(_spec_path() or ""),
            "common": {k: spec[k] for k in ("final_verdict", "valid_output") if k in spec},
            "contract_version": config.metric_contract()["version"],
            "files": {"sql/queries/l6.sql": l6_sql, "sql/metrics/l6_daily.sql": daily_sql,
                      "sql/metrics/int_interactions.sql": (SQL_DIR / "metrics" / "int_interactions.sql").read_text(),
                      "pipelines/l6.py": Path(l6_mod.__file__).read_text(),
                      "config/metric_contract.toml": (CONFIG_DIR / "metric_contract.toml").read_text()}}


def definitions() -> dict:
    """Each metric's definition, formula, threshold and SQL, read from the project's files now."""
    return _definitions(_files_stamp())


def to_csv(df: pl.DataFrame) -> bytes:
    """CSV bytes of exactly the frame given (dates ISO, lists joined)."""
    def enc(v):
        if v is None:
            return None
        if hasattr(v, "to_list"):
            v = v.to_list()
        return json.dumps(v, default=str)

    nested = [c for c, t in df.schema.items() if isinstance(t, (pl.List, pl.Array, pl.Struct)) or t == pl.Object]
    out = df.with_columns([pl.col(c).map_elements(enc, return_dtype=pl.Utf8) for c in nested]) if nested else df
    return out.write_csv().encode()
