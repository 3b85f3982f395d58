"""An independent second computation of the L6 table (SPEC §3), in polars.

Written from SPEC §3 alone (not from the project's SQL or pipelines/l6.py). It reads
the staged tables stg_users, stg_interactions, stg_adjudications, stg_interventions,
stg_user_activity, stg_infra_costs and returns one row per period that has at least
one selected interaction, with the columns of `pipelines.l6.l6_table`.

Readings of SPEC §3 where it leaves room (the team's agreed readings, a-e):
 (a) CPVO's infra part: infra_costs rows whose date is in P, for the slice's features:
     the selected feature(s) when the slice filters on feature, otherwise all features
     (so a domain / segment / model_version / experiment_group slice carries the whole
     platform's infra of P).
 (b) RΔ on an interaction-attribute slice (feature, domain, model_version): AI users are
     users with >= 1 in-slice interaction in P, anchored at their first in-slice
     interaction date in P; non-AI users are users active in P (any activity, including
     out-of-slice interactions) with no in-slice interaction in P, anchored at their first
     active date in P. "Retained" and the end-of-data date use all activity.
 (c) Final-verdict ties (two verdicts of the final tier at the same latest ts):
     hallucinated wins. A verdict with a null ts ranks below any dated verdict.
 (d) `all` spans the first to the last UTC date of the selected interactions; its
     period_start is the first date (infra and RΔ activity use that whole date span).
 (e) RΔ 95% interval: Wald interval for a difference of two proportions, in points:
     RΔ ± 100·z·sqrt(p1(1−p1)/n1 + p2(1−p2)/n2), z = Φ⁻¹(0.975); null when RΔ is null.
Further readings of my own:
 - A period is a whole calendar period (ISO week from Monday, month, quarter); only
   periods with >= 1 selected interaction are rows. For RΔ, "in P" means the whole
   calendar period, and the last active date in the data is over all users and all
   activity (user_activity ∪ interaction dates), regardless of the slice.
 - rd_n_ai / rd_n_non_ai are the group sizes after the end-of-data rule (0 when empty).
 - A user-attribute slice (segment, experiment_group) restricts interactions to users
   with the attribute and both RΔ groups to such users; interaction-attribute slices
   restrict interactions. Several keys combine with AND; several values with OR.
 - HR = null when no interaction of P has a final verdict; CPVO = null when P has no
   valid output; TTA = null when no valid output has a verification time.
 - hr_coverage = interactions with a final verdict / interactions.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Mapping, Sequence

import polars as pl

GRAINS = ("day", "week", "month", "quarter", "all")
INTERACTION_ATTRS = ("feature", "domain", "model_version")
USER_ATTRS = ("segment", "experiment_group")
WINDOW_DAYS = 7
MIN_GROUP = 30
Z975 = 1.959963984540054  # Φ⁻¹(0.975)

COLUMNS = ["period_start", "tcr", "hr", "tta_p50_s", "tta_p90_s", "hitl_per_100",
           "retention_delta_pts", "cpvo_usd", "interactions", "rd_n_ai", "rd_n_non_ai",
           "rd_ci_low", "rd_ci_high", "hr_coverage"]

STG = ["stg_users", "stg_interactions", "stg_adjudications", "stg_interventions",
       "stg_user_activity", "stg_infra_costs"]


def load_tables(con) -> dict[str, pl.DataFrame]:
    """Read the staged tables from a DuckDB connection into polars."""
    return {t: con.sql(f"select * from {t}").pl() for t in STG}


# ----------------------------------------------------------------- calendar helpers

def period_of(d: dt.date, by: str) -> dt.date:
    if by == "day":
        return d
    if by == "week":
        return d - dt.timedelta(days=d.weekday())  # Monday
    if by == "month":
        return d.replace(day=1)
    if by == "quarter":
        return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    raise ValueError(by)


def period_end(ps: dt.date, by: str) -> dt.date:
    if by == "day":
        return ps
    if by == "week":
        return ps + dt.timedelta(days=6)
    months = 1 if by == "month" else 3
    y, m = ps.year, ps.month + months
    if m > 12:
        y, m = y + 1, m - 12
    return dt.date(y, m, 1) - dt.timedelta(days=1)


def _map_dates(dates: pl.Series, periods: dict[dt.date, dt.date], by: str,
               name: str = "date") -> pl.DataFrame:
    """date -> period_start for the given dates, only where the period is one of
    `periods` (ps -> pe)."""
    rows = []
    for d in dates.unique().drop_nulls().to_list():
        if by == "all":
            for ps, pe in periods.items():
                if ps <= d <= pe:
                    rows.append((d, ps))
        else:
            ps = period_of(d, by)
            if ps in periods:
                rows.append((d, ps))
    return pl.DataFrame(rows, schema={name: pl.Date, "period_start": pl.Date}, orient="row")


# --------------------------------------------------------------------- the metric

def final_verdicts(adj: pl.DataFrame) -> pl.DataFrame:
    """interaction_id -> final_hallucinated (latest tier-2, else latest tier-1;
    ties at the same ts: hallucinated wins)."""
    a = (adj.filter(pl.col("tier").is_in([1, 2]))
            .with_columns(ts_k=pl.col("ts").fill_null(dt.datetime(1, 1, 1))))
    latest = a.group_by("interaction_id", "tier").agg(pl.col("ts_k").max().alias("max_ts"))
    per_tier = (a.join(latest, on=["interaction_id", "tier"])
                 .filter(pl.col("ts_k") == pl.col("max_ts"))
                 .group_by("interaction_id", "tier")
                 .agg(pl.col("hallucinated").any().alias("h")))
    top = per_tier.group_by("interaction_id").agg(pl.col("tier").max().alias("tier"))
    return (per_tier.join(top, on=["interaction_id", "tier"])
                    .select("interaction_id", pl.col("h").alias("final_hallucinated")))


def _derived(tables: Mapping[str, pl.DataFrame]) -> dict:
    """Slice-independent frames, computed once per tables mapping (cached inside it
    when it is a dict)."""
    cached = tables.get("_derived") if isinstance(tables, dict) else None
    if cached is not None:
        return cached
    users = tables["stg_users"].select("user_id", "segment", "experiment_group")
    inter_all = (tables["stg_interactions"]
                 .with_columns(date=pl.col("ts").dt.date())
                 .join(users, on="user_id", how="left"))
    fv = final_verdicts(tables["stg_adjudications"])
    n_itv = (tables["stg_interventions"].group_by("interaction_id")
             .agg(pl.len().cast(pl.Int64).alias("n_itv")))
    # all activity: user_activity ∪ interaction dates, over all users
    active = pl.concat([
        tables["stg_user_activity"].select(
            "user_id", pl.col("activity_date").cast(pl.Date).alias("date")),
        inter_all.select("user_id", "date"),
    ]).unique()
    nxt = (active.sort("user_id", "date")
                 .with_columns(next_date=pl.col("date").shift(-1).over("user_id")))
    d = {"users": users, "inter_all": inter_all, "fv": fv, "n_itv": n_itv,
         "active": active, "last_active": active["date"].max(), "nxt": nxt}
    if isinstance(tables, dict):
        tables["_derived"] = d
    return d


def _empty() -> pl.DataFrame:
    schema = {c: pl.Float64 for c in COLUMNS}
    schema.update(period_start=pl.Date, interactions=pl.Int64, rd_n_ai=pl.Int64,
                  rd_n_non_ai=pl.Int64)
    return pl.DataFrame(schema=schema)


def _matches(col: str, vals: Sequence[str]) -> pl.Expr:
    """A slice's values; "(none)" stands for a null value (a user outside the experiment)."""
    expr = pl.col(col).is_in([v for v in vals if v != "(none)"])
    return (expr | pl.col(col).is_null()) if "(none)" in vals else expr


def reference_l6(tables: Mapping[str, pl.DataFrame], by: str,
                 filters: Mapping[str, Sequence[str]] | None = None) -> pl.DataFrame:
    if by not in GRAINS:
        raise ValueError(by)
    filters = {k: list(v) for k, v in (filters or {}).items() if v}
    for k in filters:
        if k not in INTERACTION_ATTRS + USER_ATTRS:
            raise ValueError(f"unknown slice {k}")

    der = _derived(tables)
    users, inter_all = der["users"], der["inter_all"]

    # ---- the selected interactions
    sel = inter_all
    for k, vals in filters.items():
        sel = sel.filter(_matches(k, vals))
    if sel.height == 0:
        return _empty()

    # ---- periods (ps -> pe) that hold selected interactions
    if by == "all":
        first, last = sel["date"].min(), sel["date"].max()
        periods = {first: last}
    else:
        periods = {}
        for d in sel["date"].unique().to_list():
            ps = period_of(d, by)
            periods[ps] = period_end(ps, by)
    sel = sel.join(_map_dates(sel["date"], periods, by), on="date")

    # ---- per-interaction flags
    fv, n_itv = der["fv"], der["n_itv"]
    sel = (sel.join(fv, on="interaction_id", how="left")
              .join(n_itv, on="interaction_id", how="left")
              .with_columns(
                  completed=pl.col("outcome") == "completed",
                  adjudicated=pl.col("final_hallucinated").is_not_null(),
                  halluc=pl.col("final_hallucinated").fill_null(False),
                  n_itv=pl.col("n_itv").fill_null(0)))
    sel = sel.with_columns(valid=pl.col("completed") & ~pl.col("halluc"))
    sel = sel.with_columns(
        tta=pl.when(pl.col("valid") & pl.col("verification_ms").is_not_null())
              .then((pl.col("latency_ms") + pl.col("verification_ms")) / 1000.0)
              .otherwise(None))

    agg = (sel.group_by("period_start").agg(
        pl.len().cast(pl.Int64).alias("interactions"),
        pl.col("completed").sum().cast(pl.Int64).alias("n_completed"),
        pl.col("adjudicated").sum().cast(pl.Int64).alias("n_adjudicated"),
        pl.col("halluc").sum().cast(pl.Int64).alias("n_halluc"),
        pl.col("valid").sum().cast(pl.Int64).alias("n_valid"),
        pl.col("n_itv").sum().cast(pl.Int64).alias("n_itv"),
        pl.col("cost_usd").sum().alias("cost"),
        pl.col("tta").quantile(0.5, interpolation="linear").alias("tta_p50_s"),
        pl.col("tta").quantile(0.9, interpolation="linear").alias("tta_p90_s"),
    ))

    # ---- infra of the dates in P, for the slice's features (reading a)
    infra = tables["stg_infra_costs"]
    if "feature" in filters:
        infra = infra.filter(pl.col("feature").is_in(filters["feature"]))
    if infra.height:
        infra = (infra.join(_map_dates(infra["date"], periods, by), on="date")
                      .group_by("period_start").agg(pl.col("cost_usd").sum().alias("infra")))
    else:
        infra = pl.DataFrame(schema={"period_start": pl.Date, "infra": pl.Float64})
    agg = (agg.join(infra, on="period_start", how="left")
              .with_columns(pl.col("infra").fill_null(0.0)))

    # ---- RΔ
    rd = _retention(der, sel, users, filters, periods, by)
    agg = agg.join(rd, on="period_start", how="left").with_columns(
        pl.col("rd_n_ai").fill_null(0), pl.col("rd_n_non_ai").fill_null(0))

    out = agg.with_columns(
        tcr=pl.col("n_completed") / pl.col("interactions"),
        hr=pl.when(pl.col("n_adjudicated") > 0)
             .then(pl.col("n_halluc") / pl.col("n_adjudicated")).otherwise(None),
        hitl_per_100=100.0 * pl.col("n_itv") / pl.col("interactions"),
        cpvo_usd=pl.when(pl.col("n_valid") > 0)
                   .then((pl.col("cost") + pl.col("infra")) / pl.col("n_valid"))
                   .otherwise(None),
        hr_coverage=pl.col("n_adjudicated") / pl.col("interactions"),
    )
    return out.select(COLUMNS).sort("period_start")


def _retention(der, sel, users, filters, periods, by) -> pl.DataFrame:
    active, last_active, nxt = der["active"], der["last_active"], der["nxt"]

    # AI users: first selected interaction date in P
    ai = sel.group_by("period_start", "user_id").agg(pl.col("date").min().alias("anchor"))

    # active users in P (restricted to the user attribute, if any)
    act_p = active.join(_map_dates(active["date"], periods, by), on="date")
    user_filters = {k: v for k, v in filters.items() if k in USER_ATTRS}
    if user_filters:
        ok = users
        for k, vals in user_filters.items():
            ok = ok.filter(_matches(k, vals))
        act_p = act_p.join(ok.select("user_id"), on="user_id", how="semi")
    non = (act_p.group_by("period_start", "user_id").agg(pl.col("date").min().alias("anchor"))
                .join(ai.select("period_start", "user_id"), on=["period_start", "user_id"],
                      how="anti"))

    def group_stats(g: pl.DataFrame, suffix: str) -> pl.DataFrame:
        g = (g.filter(pl.col("anchor") + pl.duration(days=WINDOW_DAYS) <= pl.lit(last_active))
              .join(nxt.rename({"date": "anchor"}), on=["user_id", "anchor"], how="left")
              .with_columns(retained=pl.col("next_date").is_not_null()
                            & (pl.col("next_date") <= pl.col("anchor") + pl.duration(days=WINDOW_DAYS))))
        return g.group_by("period_start").agg(
            pl.len().cast(pl.Int64).alias(f"n_{suffix}"),
            pl.col("retained").sum().cast(pl.Int64).alias(f"r_{suffix}"))

    s = (pl.DataFrame({"period_start": list(periods)}, schema={"period_start": pl.Date})
           .join(group_stats(ai, "ai"), on="period_start", how="left")
           .join(group_stats(non, "non"), on="period_start", how="left")
           .with_columns(pl.col("n_ai", "r_ai", "n_non", "r_non").fill_null(0)))

    rows = []
    for r in s.iter_rows(named=True):
        n1, r1, n2, r2 = r["n_ai"], r["r_ai"], r["n_non"], r["r_non"]
        val = lo = hi = None
        if n1 >= MIN_GROUP and n2 >= MIN_GROUP:
            p1, p2 = r1 / n1, r2 / n2
            val = 100.0 * (p1 - p2)
            half = 100.0 * Z975 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
            lo, hi = val - half, val + half
        rows.append((r["period_start"], val, n1, n2, lo, hi))
    return pl.DataFrame(rows, orient="row", schema={
        "period_start": pl.Date, "retention_delta_pts": pl.Float64, "rd_n_ai": pl.Int64,
        "rd_n_non_ai": pl.Int64, "rd_ci_low": pl.Float64, "rd_ci_high": pl.Float64})
