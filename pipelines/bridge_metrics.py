"""The bridge's behavior, operations and P&L measures by period and slice (SPEC §1: slice
any L6 or bridge metric), for Explore.

The Bridge page's figures are per quarter, for the treatment population, against the
holdout (the counterfactual). Here the same node measures are computed for *whatever the
user selected* — any grain, any slice, every selected interaction (the L6 table's
population) — with no counterfactual: they describe, they do not attribute. On a quarter
and experiment_group = treatment they equal the Bridge page's node values.

Measures (the node definitions of pipelines/bridge.py, same assumptions):
  corrections_escalations_per_100   100 x outputs corrected or escalated / interactions
  human_review_hours                intervention seconds on those outputs / 3600
                                    + their count x review_minutes_per_correction / 60
  review_cost_usd                   human review hours x reviewer_cost_per_hour_usd
  valid_outputs                     outputs that count as valid (the CPVO denominator)
  minutes_saved_per_task            mean over valid outputs with a TTA of (the feature's
                                    manual baseline minutes - TTA / 60)
  user_hours_saved                  minutes saved per task x valid outputs / 60
  productivity_value_usd            user hours saved x user_hour_value_usd
  ai_spend_usd                      inference cost + each feature's infra cost x the slice's
                                    share of that feature's interactions (as the Bridge)
  support_contacts_per_1k           tickets created by the slice's users / the slice's AI
                                    interactions x 1,000
  agent_hours                       handle_time_min of those tickets / 60
  support_cost_usd                  agent hours x agent_cost_per_hour_usd
Support tickets carry no feature, domain or model version: the three support measures
are null for a slice on those (`support_applies`) and use the user slices only; their
users are those who can use the AI feature (every experiment group but the holdout)
unless the slice names experiment groups.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from pipelines import bridge, config, l6, warehouse

# The bridge node measures Explore offers, in the order it lists them.
MEASURES = ("support_contacts_per_1k", "agent_hours", "support_cost_usd",
            "corrections_escalations_per_100", "human_review_hours", "review_cost_usd",
            "valid_outputs", "minutes_saved_per_task", "user_hours_saved", "productivity_value_usd",
            "ai_spend_usd")
SUPPORT = ("support_contacts_per_1k", "agent_hours", "support_cost_usd")
INTERACTION_SLICES = ("feature", "domain", "model_version")
GRAINS = ("day", "week", "month", "quarter")
COMPONENTS = ("interactions", "valid", "ce_n", "ce_intervention_s", "tta_n", "tta_sum_s", "cost_usd",
              "infra_cost_usd", "tickets", "handle_time_min")
# The telemetry tables each measure reads (gate warnings on them travel with the measure).
INPUTS: dict[str, tuple[str, ...]] = {
    "support_contacts_per_1k": ("support_tickets", "users", "interactions"),
    "agent_hours": ("support_tickets", "users"),
    "support_cost_usd": ("support_tickets", "users"),
    "corrections_escalations_per_100": ("interactions", "users"),
    "human_review_hours": ("interactions", "interventions", "users"),
    "review_cost_usd": ("interactions", "interventions", "users"),
    "valid_outputs": ("interactions", "adjudications", "users"),
    "minutes_saved_per_task": ("interactions", "adjudications", "users"),
    "user_hours_saved": ("interactions", "adjudications", "users"),
    "productivity_value_usd": ("interactions", "adjudications", "users"),
    "ai_spend_usd": ("interactions", "infra_costs", "users"),
}
SUPPORT_NOTE = ("Support tickets carry no feature, domain or model version, so support measures "
                "cannot be cut by them; clear those filters (segment and experiment group apply).")


def support_applies(filters: dict | None) -> bool:
    """Tickets can be cut by this slice (no feature, domain or model-version filter)."""
    return not any((filters or {}).get(s) for s in INTERACTION_SLICES)


def touched(stage: str, table: str) -> list[str]:
    """The measures a gate result on `table` (of `stage`) touches (cf. config.metrics_touched)."""
    return config.touched_by(stage, table, INPUTS)


def meta(measure: str) -> dict:
    """{"label", "unit", "kind"} of a measure, from its node in config/bridge.toml."""
    for node in (config.load("bridge").get("nodes") or {}).values():
        if node.get("measure") == measure:
            return {"label": node["label"], "unit": node["unit"], "kind": node["kind"]}
    m = bridge.MEASURES[measure]
    return {"label": measure.replace("_", " "), "unit": m["unit"], "kind": "bridge"}


def assumptions_note(measures) -> str:
    """Which business assumptions (name = value unit) the measures use, with the file's version."""
    assm = bridge.assumptions()
    names = sorted({a for m in measures for a in bridge.MEASURES[m].get("assumptions", [])})
    if not names:
        return ""
    parts = []
    for a in names:
        item = assm["items"][a]
        if "by_feature" in item:
            vals = ", ".join(f"{f} {v:g}" for f, v in item["by_feature"].items())
            parts.append(f"{a} = {vals} (other features {item.get('default', item.get('value', 0)):g}) {item['unit']}")
        else:
            parts.append(f"{a} = {float(item['value']):g} {item['unit']}")
    return f"Assumptions used (config/assumptions.toml {assm['version']}): " + "; ".join(parts) + "."


def _ratio(num, den, scale: float = 1.0):
    return None if not den else scale * num / den


def table(con: duckdb.DuckDBPyConnection, by: str, filters: dict | None = None,
          date_from: dt.date | None = None, date_to: dt.date | None = None) -> pl.DataFrame:
    """One row per period that has selected interactions (or, for a user slice, tickets):
    every measure of MEASURES and its components. Support measures are null when the
    slice filters on an interaction attribute."""
    if by not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}; got {by!r}")
    params = l6.query_params(by, filters, date_from, date_to)
    params = {k: params[k] for k in (*l6.SLICES.values(), "grain", "date_from", "date_to", "null_label")}
    rows = warehouse.run_query(con, "queries/bridge_metrics.sql", params).pl()
    support = support_applies(filters)
    tickets = (warehouse.run_query(con, "queries/bridge_tickets.sql",
                                   {k: params[k] for k in ("segments", "experiment_groups", "grain",
                                                           "date_from", "date_to", "null_label")}).pl()
               if support else pl.DataFrame(schema={"period_start": pl.Date, "tickets": pl.Int64,
                                                    "handle_time_min": pl.Float64}))
    assm = bridge.assumptions()
    rm = bridge._value(assm, "review_minutes_per_correction")
    rr = bridge._value(assm, "reviewer_cost_per_hour_usd")
    vh = bridge._value(assm, "user_hour_value_usd")
    ah = bridge._value(assm, "agent_cost_per_hour_usd")

    per: dict[dt.date, dict] = {}
    for r in rows.iter_rows(named=True):
        p = per.setdefault(r["period_start"], {c: 0 for c in COMPONENTS} | {"baseline_min": 0.0})
        for c in ("interactions", "valid", "ce_n", "ce_intervention_s", "tta_n", "tta_sum_s", "cost_usd",
                  "infra_cost_usd"):
            p[c] += r[c]
        p["baseline_min"] += r["tta_n"] * bridge._baseline(assm, r["feature"])
    for r in tickets.iter_rows(named=True):
        p = per.setdefault(r["period_start"], {c: 0 for c in COMPONENTS} | {"baseline_min": 0.0})
        p["tickets"], p["handle_time_min"] = r["tickets"], r["handle_time_min"]

    out = []
    for period in sorted(per):
        p = per[period]
        saved = _ratio(p["baseline_min"] - p["tta_sum_s"] / 60.0, p["tta_n"])
        review_h = p["ce_intervention_s"] / 3600.0 + p["ce_n"] * rm / 60.0 if p["interactions"] else None
        agent_h = p["handle_time_min"] / 60.0 if support else None
        row = {
            "period_start": period,
            "support_contacts_per_1k": _ratio(p["tickets"], p["interactions"], 1000.0) if support else None,
            "agent_hours": agent_h,
            "support_cost_usd": None if agent_h is None else agent_h * ah,
            "corrections_escalations_per_100": _ratio(p["ce_n"], p["interactions"], 100.0),
            "human_review_hours": review_h,
            "review_cost_usd": None if review_h is None else review_h * rr,
            "valid_outputs": p["valid"] if p["interactions"] else None,
            "minutes_saved_per_task": saved,
            "user_hours_saved": None if saved is None else saved * p["valid"] / 60.0,
            "productivity_value_usd": None if saved is None else saved * p["valid"] / 60.0 * vh,
            "ai_spend_usd": p["cost_usd"] + p["infra_cost_usd"] if p["interactions"] else None,
        }
        row.update({c: p[c] for c in COMPONENTS})
        row["tickets"] = p["tickets"] if support else None
        row["handle_time_min"] = p["handle_time_min"] if support else None
        out.append(row)
    schema = {"period_start": pl.Date, **{m: pl.Float64 for m in MEASURES},
              **{c: pl.Float64 for c in COMPONENTS}}
    for c in ("interactions", "valid", "ce_n", "tta_n", "tickets"):
        schema[c] = pl.Int64
    return pl.DataFrame(out, schema=schema, orient="row") if out else pl.DataFrame(schema=schema)
