"""The KPI bridge (SPEC §4): AI metric -> user behavior -> operations -> dollars.

Chains are config (`config/bridge.toml`: nodes, edges, estimators; `config/assumptions.toml`:
the dollar assumptions, versioned). `load_chains()` validates them and rejects, with a
message naming the chain and the fix, a chain that does not reach a P&L node within
three steps, a cycle, an unknown node, a missing assumption or a unit mismatch.

`build(con, run_id)` runs inside the pipeline run, after the L6 metrics:

1. SQL (`sql/bridge/*.sql`, per-user and per-cell aggregates): bridge_quarters,
   bridge_user_quarter, bridge_cells_user, bridge_cells_interaction, bridge_quarter_base.
2. Statistics in numpy/scipy on those aggregates:
   - causal, per quarter: treatment vs holdout, intention-to-treat, over every assigned
     user with signup_date <= the quarter's last day; Welch t intervals (or a bootstrap
     over users, config); CUPED beside the plain estimate where a pre-period exists;
   - observational edges: dose-response (WLS, HC1 robust errors) across ISO weeks x
     slices, and measured conversion rates;
   - per chain and quarter: node values, edge slopes, the dollars against the holdout
     counterfactual (scaled to the treatment population), the dollars the chain implies,
     whether the two agree, and the quarter-over-quarter waterfall.
3. Tables (quarter-keyed, documented in `TABLES` below): bridge_causal, bridge_edges,
   bridge_nodes, bridge_chains, bridge_waterfall.

Dollar sign convention: every `usd_*` figure is the impact on the P&L — positive is good
(a saving or revenue), negative a cost. Node values keep their natural sign (a support
cost node holds the cost).

`report(con, quarter)` (the `bridge` CLI's JSON), `what_if(con, quarter, chain, value)`
and `quarters(con)` only read those tables.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines import config, warehouse
from pipelines.config import ConfigError

Z95 = 1.959963984540054
MAX_STEPS = 3
NODE_KINDS = ("ai_metric", "behavior", "ops", "pnl")
ESTIMATORS = ("dose_response", "conversion", "holdout_ratio", "assumption")
FIXED_EFFECTS = ("none", "slice", "week")
CELL_GRAINS = {"week_segment": "bridge_cells_user", "week_domain": "bridge_cells_interaction"}
L6_METRICS = ("tcr", "hr", "tta_p50_s", "hitl_per_100", "retention_delta_pts", "cpvo_usd")
SQL_MODELS = [
    "bridge/bridge_quarters.sql",
    "bridge/bridge_user_quarter.sql",
    "bridge/bridge_cells_user.sql",
    "bridge/bridge_cells_interaction.sql",
    "bridge/bridge_quarter_base.sql",
]
QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")

# ----------------------------------------------------------------------------- registries
# Causal measures: per-user outcomes compared between treatment and holdout (`short`: the
# name a table gives the measure, `label` its definition).
CAUSAL_MEASURES: dict[str, dict] = {
    "tickets_per_user": {
        "unit": "contacts per user", "column": "tickets", "covariate": "pre_tickets",
        "label": "Support tickets created in the quarter, per assigned user", "short": "Support tickets per user"},
    "agent_hours_per_user": {
        "unit": "hours per user", "column": "agent_hours", "covariate": "pre_agent_hours",
        "label": "Agent hours (sum of handle_time_min / 60) of those tickets, per assigned user", "short": "Agent hours per user"},
    "support_cost_per_user_usd": {
        "unit": "USD per user", "column": "agent_hours", "covariate": "pre_agent_hours",
        "scale_assumption": "agent_cost_per_hour_usd",
        "label": "Agent hours x the loaded agent cost per hour, per assigned user", "short": "Support cost per user"},
    "retained_7d_share": {
        "unit": "share", "column": "retained_7d", "covariate": "pre_active_days", "subset": "retention_eligible",
        "label": "Share of active users (anchored at their first active date in the quarter) "
                 "active again within 7 days", "short": "7-day retention"},
}

# Node measures: what a node's `measure` may name. `cells`: the cell grains that hold a
# per-cell column of it (for dose-response edges); `counterfactual`: the node's value
# without the AI feature ("holdout": measured on the holdout group; "zero": the holdout
# has none of it, e.g. no AI queries to review; None: not defined).
MEASURES: dict[str, dict] = {
    "tcr": {"unit": "share", "cells": {"week_segment": "tcr", "week_domain": "tcr"}, "counterfactual": None},
    "hr": {"unit": "share", "cells": {"week_domain": "hr"}, "counterfactual": None},
    "tta_p50_s": {"unit": "seconds", "cells": {"week_domain": "tta_p50_s"}, "counterfactual": None},
    "retention_delta_pts": {"unit": "points", "cells": {}, "counterfactual": "zero"},
    "cpvo_usd": {"unit": "USD per valid output", "cells": {"week_domain": "cpvo_usd"}, "counterfactual": "zero"},
    "hitl_per_100": {"unit": "interventions per 100 queries", "cells": {}, "counterfactual": None},
    "support_contacts_per_1k": {"unit": "contacts per 1,000 AI interactions",
                                "cells": {"week_segment": "support_contacts_per_1k"}, "counterfactual": "holdout",
                                "holdout_measured": True},
    "agent_hours": {"unit": "hours", "cells": {"week_segment": "agent_hours"}, "counterfactual": "holdout",
                    "holdout_measured": True},
    "support_cost_usd": {"unit": "USD", "cells": {}, "counterfactual": "holdout",
                         "assumptions": ["agent_cost_per_hour_usd"], "holdout_measured": True},
    "corrections_escalations_per_100": {"unit": "corrections and escalations per 100 queries",
                                        "cells": {"week_domain": "corrections_escalations_per_100"},
                                        "counterfactual": "zero"},
    "human_review_hours": {"unit": "hours", "cells": {}, "counterfactual": "zero",
                           "assumptions": ["review_minutes_per_correction"]},
    "review_cost_usd": {"unit": "USD", "cells": {}, "counterfactual": "zero",
                        "assumptions": ["review_minutes_per_correction", "reviewer_cost_per_hour_usd"]},
    "incremental_retained_users": {"unit": "users", "cells": {}, "counterfactual": "zero",
                                   "holdout_measured": True},
    "retained_revenue_usd": {"unit": "USD", "cells": {}, "counterfactual": "zero", "holdout_measured": True,
                             "assumptions": ["revenue_per_retained_user_month_usd", "retention_credit_months"]},
    "minutes_saved_per_task": {"unit": "minutes per task", "cells": {"week_domain": "minutes_saved_per_task"},
                               "counterfactual": "zero", "assumptions": ["manual_baseline_minutes_per_task"]},
    "user_hours_saved": {"unit": "hours", "cells": {}, "counterfactual": "zero",
                         "assumptions": ["manual_baseline_minutes_per_task"]},
    "productivity_value_usd": {"unit": "USD", "cells": {}, "counterfactual": "zero",
                               "assumptions": ["manual_baseline_minutes_per_task", "user_hour_value_usd"]},
    "valid_outputs": {"unit": "valid outputs", "cells": {"week_domain": "valid"}, "counterfactual": None},
    "ai_spend_usd": {"unit": "USD", "cells": {}, "counterfactual": "zero"},
}

# Conversions: rates measured in the quarter (observational), from one node unit to another.
CONVERSIONS: dict[str, dict] = {
    "agent_hours_per_contact": {
        "from_unit": "contacts per 1,000 AI interactions", "to_unit": "hours", "assumptions": {},
        "basis": "mean agent hours per support ticket of the treatment group in the quarter "
                 "x its AI interactions / 1,000 (ratio estimator over users)"},
    "review_hours_per_correction": {
        "from_unit": "corrections and escalations per 100 queries", "to_unit": "hours",
        "assumptions": {"review_minutes_per_correction": "minutes per correction or escalation"},
        "basis": "(mean human intervention time recorded on a corrected or escalated output + "
                 "review_minutes_per_correction) x the treatment group's AI interactions / 100"},
    "ai_users_per_point": {
        "from_unit": "points", "to_unit": "users", "assumptions": {},
        "basis": "the treatment group's RΔ-eligible AI users / 100: one point of retention "
                 "difference applied to them"},
    "tasks_per_hour_saved": {
        "from_unit": "minutes per task", "to_unit": "hours", "assumptions": {},
        "basis": "the treatment group's valid outputs (tasks) in the quarter / 60"},
    "valid_outputs_at_spend": {
        "from_unit": "USD per valid output", "to_unit": "valid outputs", "assumptions": {},
        "basis": "at the quarter's spend, valid outputs = spend / CPVO, so d(valid outputs)/d(CPVO) = "
                 "-valid outputs / CPVO (an identity at the treatment group's volume)"},
    "replacement_cost_per_valid_output": {
        "from_unit": "valid outputs", "to_unit": "USD", "assumptions": {},
        "basis": "each valid output lost costs CPVO to replace, so d(spend)/d(valid outputs) = -CPVO "
                 "(an identity)"},
}

# Scales for holdout_ratio edges (from per-user differences to the nodes' units).
SCALES: dict[str, dict] = {
    "one": {"unit": ""},
    "treatment_population": {"unit": "users"},
    "treatment_interactions_per_1k": {"unit": "1,000 AI interactions"},
    "treatment_interactions_per_100": {"unit": "100 queries"},
}

METHOD_WELCH = ("welch_t: difference of per-user means (intention-to-treat), Welch–Satterthwaite "
                "t interval (the delta-method / unequal-variance interval)")
METHOD_BOOT = "bootstrap: percentile interval, {draws} resamples of users within each group"


# ----------------------------------------------------------------------------- units
def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3 and word != "usd":
        return word[:-1]
    return word


def unit_dims(unit: str | None) -> collections.Counter:
    """A unit string as a multiset of base units with exponents ("USD per hour" ->
    {usd: 1, hour: -1}); " per " divides (left to right), "-" multiplies within a part."""
    dims: collections.Counter = collections.Counter()
    text = (unit or "").strip().lower()
    if not text:
        return dims
    for i, part in enumerate(re.split(r"\s+per\s+", text)):
        for factor in re.split(r"(?<=[a-z])-(?=[a-z])", part.strip()):
            token = " ".join(_singular(w) for w in factor.split())
            if token in ("", "1"):
                continue
            dims[token] += 1 if i == 0 else -1
    return collections.Counter({k: v for k, v in dims.items() if v})


def _ratio_dims(to_unit: str, from_unit: str) -> collections.Counter:
    d = unit_dims(to_unit)
    d.subtract(unit_dims(from_unit))
    return collections.Counter({k: v for k, v in d.items() if v})


def _product_dims(units: list[str]) -> collections.Counter:
    d: collections.Counter = collections.Counter()
    for u in units:
        d.update(unit_dims(u))
    return collections.Counter({k: v for k, v in d.items() if v})


def _dims_text(d: collections.Counter) -> str:
    num = [k for k, v in sorted(d.items()) for _ in range(v) if v > 0]
    den = [k for k, v in sorted(d.items()) for _ in range(-v) if v < 0]
    text = " x ".join(num) or "1"
    return text + (" per " + " per ".join(den) if den else "")


def edge_unit(to_unit: str, from_unit: str) -> str:
    """The unit of a slope from `from_unit` to `to_unit`, readable ("USD per hour",
    "(contacts per 1,000 AI interactions) per share")."""
    if " per " in from_unit:
        den = f"({from_unit})"
    else:
        den = " ".join(_singular(w) if w.lower() != "usd" else w for w in from_unit.split())
    num = f"({to_unit})" if " per " in to_unit else to_unit
    return f"{num} per {den}"


# ----------------------------------------------------------------------------- config
def assumptions(assumptions_cfg: dict | None = None) -> dict:
    """{"version", "items": {name: {"value", "unit", "label", "source", "low", "high", "by_feature"}}}."""
    cfg = assumptions_cfg if assumptions_cfg is not None else config.load("assumptions")
    version = cfg.get("version")
    if not version:
        raise ConfigError("config/assumptions.toml has no `version`; add version = \"YYYY.MM.N\" "
                          "and bump it on every change")
    items = cfg.get("assumptions") or {}
    if not isinstance(items, dict):
        raise ConfigError("config/assumptions.toml: [assumptions] must be tables "
                          "([assumptions.<name>] with value and unit)")
    for name, a in items.items():
        if not isinstance(a, dict) or not a.get("unit"):
            raise ConfigError(f"config/assumptions.toml: assumption `{name}` has no `unit`; "
                              f"add unit = \"...\" (e.g. \"USD per hour\")")
        if "value" not in a and "by_feature" not in a:
            raise ConfigError(f"config/assumptions.toml: assumption `{name}` has no `value`; "
                              f"add value = <number> (or by_feature and default)")
        if "value" in a and not isinstance(a["value"], (int, float)):
            raise ConfigError(f"config/assumptions.toml: assumption `{name}` value must be a number")
    return {"version": str(version), "items": items}


def _err(chain: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"config/bridge.toml: chain `{chain}`: {problem}; fix: {fix}")


def load_chains(bridge_cfg: dict | None = None, assumptions_cfg: dict | None = None) -> list[dict]:
    """The validated chains of config/bridge.toml (or of the dicts given, for tests).

    Each: {"id", "name", "ai_metric", "nodes": [node dicts in chain order, with "name"],
    "edges": [edge dicts, normalized], "assumptions": [names used], "pnl_sign"}.
    Raises ConfigError naming the chain and the fix."""
    cfg = bridge_cfg if bridge_cfg is not None else config.load("bridge")
    assm = assumptions(assumptions_cfg)["items"]
    if not cfg.get("version"):
        raise ConfigError("config/bridge.toml has no `version`; add version = \"YYYY.MM.N\"")
    nodes = cfg.get("nodes") or {}
    chains = cfg.get("chains") or []
    if not isinstance(chains, list) or not chains:
        raise ConfigError("config/bridge.toml declares no chains; add [[chains]] tables (see SPEC §4)")
    out, seen = [], set()
    for i, ch in enumerate(chains):
        cid = str(ch.get("id") or ch.get("name") or f"#{i + 1}")
        if cid in seen:
            raise _err(cid, "the id is used twice", "give every [[chains]] a unique `id`")
        seen.add(cid)
        out.append(_validate_chain(cid, ch, nodes, assm))
    return out


def _validate_node(cid: str, name: str, nodes: dict, assm: dict) -> dict:
    node = nodes.get(name)
    if node is None:
        raise _err(cid, f"unknown node `{name}`",
                   f"declare [nodes.{name}] (label, kind, measure, unit) or use one of: {', '.join(sorted(nodes))}")
    kind = node.get("kind")
    if kind not in NODE_KINDS:
        raise _err(cid, f"node `{name}` has kind {kind!r}", f"set kind to one of {', '.join(NODE_KINDS)}")
    measure = node.get("measure")
    if measure not in MEASURES:
        raise _err(cid, f"node `{name}` has unknown measure {measure!r}",
                   f"use a measure the bridge computes: {', '.join(sorted(MEASURES))}")
    m = MEASURES[measure]
    if unit_dims(node.get("unit")) != unit_dims(m["unit"]):
        raise _err(cid, f"unit mismatch at node `{name}`: it declares {node.get('unit')!r} but its measure "
                        f"`{measure}` is in {m['unit']!r}",
                   f"set unit = \"{m['unit']}\" for [nodes.{name}]")
    if kind == "ai_metric" and measure not in L6_METRICS:
        raise _err(cid, f"node `{name}` is an ai_metric but measure `{measure}` is not an L6 metric",
                   f"use one of {', '.join(L6_METRICS)}")
    for a in m.get("assumptions", []):
        if a not in assm:
            raise _err(cid, f"missing assumption `{a}` (node `{name}` needs it)",
                       f"add [assumptions.{a}] with value and unit to config/assumptions.toml")
    sign = node.get("pnl_sign", -1 if kind == "pnl" else None)
    if kind == "pnl":
        if sign not in (-1, 1):
            raise _err(cid, f"P&L node `{name}` has pnl_sign {sign!r}", "set pnl_sign = -1 (cost) or 1 (revenue/value)")
        if unit_dims(node.get("unit")) != unit_dims("USD"):
            raise _err(cid, f"P&L node `{name}` is in {node.get('unit')!r}", "a P&L line is in USD")
    return {"name": name, "label": node.get("label", name), "kind": kind, "measure": measure,
            "unit": node.get("unit"), "pnl_sign": sign}


def _validate_chain(cid: str, ch: dict, nodes: dict, assm: dict) -> dict:
    start = ch.get("ai_metric")
    if not start:
        raise _err(cid, "no `ai_metric`", "set ai_metric = \"<node>\" (the chain's first node)")
    edges = ch.get("edges") or []
    if not edges:
        raise _err(cid, "no edges", "add [[chains.edges]] from the AI metric to a P&L node (at most three)")
    for e in edges:
        for end in ("from", "to"):
            if not e.get(end):
                raise _err(cid, f"an edge has no `{end}`", "every edge needs `from` and `to` node names")
            if e[end] not in nodes:
                raise _err(cid, f"unknown node `{e[end]}` in edge {e.get('from')} → {e.get('to')}",
                           f"declare [nodes.{e[end]}] or use one of: {', '.join(sorted(nodes))}")
    first = _validate_node(cid, start, nodes, assm)
    if first["kind"] != "ai_metric":
        raise _err(cid, f"its first node `{start}` is a {first['kind']} node", "start the chain at an ai_metric node")
    outgoing: dict[str, list[dict]] = collections.defaultdict(list)
    for e in edges:
        outgoing[e["from"]].append(e)
    path, path_edges, node = [start], [], start
    while True:
        if nodes[node].get("kind") == "pnl":
            break
        outs = outgoing.get(node, [])
        if len(outs) > 1:
            raise _err(cid, f"node `{node}` has {len(outs)} outgoing edges",
                       "a chain is a single path: keep one edge out of each node (split it into two chains)")
        if not outs:
            raise _err(cid, f"it does not reach a P&L node: the path {' → '.join(path)} stops at `{node}` "
                            f"({nodes[node].get('kind')})",
                       f"add an edge from `{node}` towards a P&L node (kind = \"pnl\"), at most "
                       f"{MAX_STEPS} steps from the AI metric")
        e = outs[0]
        if e["to"] in path:
            raise _err(cid, f"cycle: {' → '.join(path + [e['to']])}",
                       f"remove the edge {e['from']} → {e['to']}; a chain runs from the AI metric to a P&L node "
                       f"without revisiting a node")
        path.append(e["to"])
        path_edges.append(e)
        node = e["to"]
        if len(path_edges) >= MAX_STEPS and nodes[node].get("kind") != "pnl":
            raise _err(cid, f"it does not reach a P&L node within {MAX_STEPS} steps "
                            f"({' → '.join(path)} …)",
                       f"shorten the chain: AI metric → behavior → operations → P&L is at most {MAX_STEPS} edges")
    stray = [e for e in edges if e not in path_edges]
    if stray:
        e = stray[0]
        raise _err(cid, f"edge {e['from']} → {e['to']} is not on the path {' → '.join(path)}",
                   "remove it, or move it to its own chain")
    chain_nodes = [first] + [_validate_node(cid, n, nodes, assm) for n in path[1:]]
    by_name = {n["name"]: n for n in chain_nodes}
    used: list[str] = []
    for n in chain_nodes:
        used += MEASURES[n["measure"]].get("assumptions", [])
    norm_edges = []
    for e in path_edges:
        a, b = by_name[e["from"]], by_name[e["to"]]
        est = e.get("estimator")
        where = f"edge {a['name']} → {b['name']}"
        ne = {"from": a["name"], "to": b["name"], "estimator": est, "from_unit": a["unit"], "to_unit": b["unit"],
              "unit": edge_unit(b["unit"], a["unit"]), "assumptions": []}
        if est not in ESTIMATORS:
            raise _err(cid, f"{where} has estimator {est!r}", f"use one of {', '.join(ESTIMATORS)}")
        if est == "dose_response":
            cells = e.get("cells")
            if cells not in CELL_GRAINS:
                raise _err(cid, f"{where}: cells {cells!r}", f"set cells to one of {', '.join(CELL_GRAINS)}")
            for n in (a, b):
                if cells not in MEASURES[n["measure"]]["cells"]:
                    have = ", ".join(MEASURES[n["measure"]]["cells"]) or "none"
                    raise _err(cid, f"{where}: measure `{n['measure']}` has no per-cell values at {cells} "
                                    f"(it has: {have})",
                               "use a cells grain both nodes have, or a conversion / assumption estimator")
            fe = e.get("fixed_effects", "none")
            if fe not in FIXED_EFFECTS:
                raise _err(cid, f"{where}: fixed_effects {fe!r}", f"use one of {', '.join(FIXED_EFFECTS)}")
            ne.update(cells=cells, fixed_effects=fe, method="observational")
        elif est == "conversion":
            conv = CONVERSIONS.get(e.get("conversion"))
            if conv is None:
                raise _err(cid, f"{where}: unknown conversion {e.get('conversion')!r}",
                           f"use one of {', '.join(CONVERSIONS)}")
            if (unit_dims(conv["from_unit"]) != unit_dims(a["unit"])
                    or unit_dims(conv["to_unit"]) != unit_dims(b["unit"])):
                raise _err(cid, f"unit mismatch along {where}: conversion `{e['conversion']}` goes from "
                                f"{conv['from_unit']!r} to {conv['to_unit']!r}, the nodes are in "
                                f"{a['unit']!r} and {b['unit']!r}",
                           "use a conversion between these units, or fix the node units")
            for name, unit in conv["assumptions"].items():
                if name not in assm:
                    raise _err(cid, f"missing assumption `{name}` ({where} uses it)",
                               f"add [assumptions.{name}] (unit \"{unit}\") to config/assumptions.toml")
                if unit_dims(assm[name]["unit"]) != unit_dims(unit):
                    raise _err(cid, f"unit mismatch along {where}: assumption `{name}` is in "
                                    f"{assm[name]['unit']!r}, the conversion needs {unit!r}",
                               f"state `{name}` in {unit} in config/assumptions.toml")
                used.append(name)
            ne.update(conversion=e["conversion"], method="observational", assumptions=list(conv["assumptions"]))
        elif est == "holdout_ratio":
            num, den, scale = e.get("numerator"), e.get("denominator"), e.get("scale", "one")
            for role, m in (("numerator", num), ("denominator", den)):
                if m not in CAUSAL_MEASURES:
                    raise _err(cid, f"{where}: {role} {m!r} is not a causal measure",
                               f"use one of {', '.join(CAUSAL_MEASURES)}")
            if scale not in SCALES:
                raise _err(cid, f"{where}: scale {scale!r}", f"use one of {', '.join(SCALES)}")
            got = _product_dims([CAUSAL_MEASURES[num]["unit"], SCALES[scale]["unit"]])
            got.subtract(unit_dims(CAUSAL_MEASURES[den]["unit"]))
            got = collections.Counter({k: v for k, v in got.items() if v})
            need = _ratio_dims(b["unit"], a["unit"])
            if got != need:
                raise _err(cid, f"unit mismatch along {where}: {num} / {den} x {scale} is in {_dims_text(got)}, "
                                f"the edge needs {_dims_text(need)}",
                           "pick the numerator, denominator and scale that give the nodes' units")
            for m in (num, den):
                if CAUSAL_MEASURES[m].get("scale_assumption"):
                    used.append(CAUSAL_MEASURES[m]["scale_assumption"])
            ne.update(numerator=num, denominator=den, scale=scale, method="causal")
        else:  # assumption
            names = e.get("assumptions") or ([e["assumption"]] if e.get("assumption") else [])
            if not names:
                raise _err(cid, f"{where} uses estimator `assumption` but names no assumptions",
                           "add assumptions = [\"<name>\", ...] (names in config/assumptions.toml)")
            for name in names:
                if name not in assm:
                    raise _err(cid, f"missing assumption `{name}` ({where} uses it)",
                               f"add [assumptions.{name}] with value and unit to config/assumptions.toml, "
                               f"or correct the name (known: {', '.join(sorted(assm))})")
                if "value" not in assm[name]:
                    raise _err(cid, f"{where}: assumption `{name}` has no single value",
                               f"give [assumptions.{name}] a value")
            got = _product_dims([assm[n]["unit"] for n in names])
            need = _ratio_dims(b["unit"], a["unit"])
            if got != need:
                raise _err(cid, f"unit mismatch along {where}: {' x '.join(names)} is in "
                                f"{' x '.join(repr(assm[n]['unit']) for n in names)} = {_dims_text(got)}, "
                                f"but {b['unit']!r} per {a['unit']!r} needs {_dims_text(need)}",
                           "state the assumption in the nodes' units in config/assumptions.toml "
                           "(or fix the node units)")
            used += names
            ne.update(method="observational", assumptions=list(names))
        norm_edges.append(ne)
    last = chain_nodes[-1]
    return {"id": cid, "name": ch.get("name") or cid, "ai_metric": first["measure"], "ai_node": first["name"],
            "nodes": chain_nodes, "edges": norm_edges, "assumptions": sorted(set(used)),
            "pnl_sign": last["pnl_sign"]}


def _tolerance(cfg: dict) -> float:
    value = (cfg.get("consistency") or {}).get("tolerance_share")
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"config/bridge.toml [consistency] tolerance_share = {value!r}; set a share in [0, 1), "
                          "e.g. 0.05 (a gap under 5% of the larger figure is immaterial)")
    return float(value)


def bridge_settings(bridge_cfg: dict | None = None) -> dict:
    cfg = bridge_cfg if bridge_cfg is not None else config.load("bridge")
    causal = dict(cfg.get("causal") or {})
    dr = dict(cfg.get("dose_response") or {})
    interval = causal.get("interval", "welch")
    if interval not in ("welch", "bootstrap"):
        raise ConfigError(f"config/bridge.toml [causal] interval = {interval!r}; use \"welch\" or \"bootstrap\"")
    start = causal.get("experiment_start") or None
    if start:
        try:
            start = dt.date.fromisoformat(str(start))
        except ValueError:
            raise ConfigError(f"config/bridge.toml [causal] experiment_start = {start!r} is not an ISO date "
                              f"(YYYY-MM-DD); fix it or leave it empty") from None
    return {"version": str(cfg.get("version", "")), "interval": interval,
            "bootstrap_draws": int(causal.get("bootstrap_draws", 2000)),
            "experiment_start": start, "pre_period_days": int(causal.get("pre_period_days", 28)),
            "consistency_tolerance": _tolerance(cfg),
            "min_cell_interactions": int(dr.get("min_cell_interactions", 30)),
            "min_cells": int(dr.get("min_cells", 6))}


# ----------------------------------------------------------------------------- statistics
def _t_crit(df: float) -> float:
    from scipy import stats

    if df is None or not math.isfinite(df) or df <= 0:
        return Z95
    return float(stats.t.ppf(0.975, df))


def welch(x: np.ndarray, y: np.ndarray) -> dict:
    """Difference of means x - y with the Welch (unequal variances) 95% interval,
    the same numbers as scipy.stats.ttest_ind(x, y, equal_var=False).confidence_interval()."""
    n1, n2 = len(x), len(y)
    out = {"treatment": float(x.mean()) if n1 else None, "holdout": float(y.mean()) if n2 else None,
           "diff": None, "se": None, "ci_low": None, "ci_high": None, "df": None, "p_value": None,
           "n_treatment": int(n1), "n_holdout": int(n2)}
    if n1 < 2 or n2 < 2:
        return out
    v1, v2 = float(x.var(ddof=1)), float(y.var(ddof=1))
    a, b = v1 / n1, v2 / n2
    se = math.sqrt(a + b)
    d = out["treatment"] - out["holdout"]
    out.update(diff=d, se=se)
    if se == 0:
        out.update(ci_low=d, ci_high=d, df=float(n1 + n2 - 2), p_value=1.0 if d == 0 else 0.0)
        return out
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    tc = _t_crit(df)
    from scipy import stats

    out.update(ci_low=d - tc * se, ci_high=d + tc * se, df=df,
               p_value=float(2 * stats.t.sf(abs(d / se), df)))
    return out


def bootstrap(x: np.ndarray, y: np.ndarray, draws: int = 2000, seed: int = 20260401) -> dict:
    """Difference of means with a percentile bootstrap interval (resampling users within each group)."""
    out = welch(x, y)
    if out["diff"] is None:
        return out
    rng = np.random.default_rng(seed)
    diffs = np.empty(draws)
    n1, n2 = len(x), len(y)
    for b in range(draws):
        diffs[b] = x[rng.integers(0, n1, n1)].mean() - y[rng.integers(0, n2, n2)].mean()
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    out.update(ci_low=float(lo), ci_high=float(hi), se=float(diffs.std(ddof=1)), df=None)
    return out


def cuped(y_t: np.ndarray, y_h: np.ndarray, x_t: np.ndarray, x_h: np.ndarray) -> dict:
    """CUPED: y - theta (x - mean x), theta = cov(y, x) / var(x) pooled over both groups;
    then the Welch interval on the adjusted outcome. Returns the estimate and the variance
    reduction (1 - var(adjusted) / var(y))."""
    y = np.concatenate([y_t, y_h])
    xx = np.concatenate([x_t, x_h])
    vx = float(xx.var(ddof=1)) if len(xx) > 1 else 0.0
    if vx == 0:
        return {"available": False, "note": "the pre-period covariate does not vary"}
    theta = float(np.cov(y, xx, ddof=1)[0, 1] / vx)
    mx = float(xx.mean())
    r = welch(y_t - theta * (x_t - mx), y_h - theta * (x_h - mx))
    vy = float(y.var(ddof=1))
    adj = y - theta * (xx - mx)
    return {"available": True, "diff": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "se": r["se"],
            "theta": theta, "variance_reduction": (1 - float(adj.var(ddof=1)) / vy) if vy > 0 else None}


def wls_slope(x: np.ndarray, y: np.ndarray, w: np.ndarray, groups: np.ndarray | None = None) -> dict:
    """Weighted least squares y = a + b x (+ group fixed effects), HC1 robust standard error.

    With groups, x and y are demeaned within each group (weighted), which gives the same
    slope and residuals as group dummies (Frisch–Waugh–Lovell). The level at x0 is
    `mean_y + slope * (x0 - mean_x)` (weighted means over all cells)."""
    n = len(x)
    w_raw = w.astype(float)
    w = w_raw / w_raw.sum()
    mx, my = float(np.sum(w * x)), float(np.sum(w * y))
    if groups is not None:
        xd, yd = x.astype(float).copy(), y.astype(float).copy()
        uniq, inv = np.unique(groups, return_inverse=True)
        sw = np.bincount(inv, weights=w)
        xd -= (np.bincount(inv, weights=w * x) / sw)[inv]
        yd -= (np.bincount(inv, weights=w * y) / sw)[inv]
        k = 1 + len(uniq)
    else:
        xd, yd = x - mx, y - my
        k = 2
    sxx = float(np.sum(w * xd * xd))
    if n <= k or sxx <= 0:
        return {"slope": None, "se": None, "n": n, "k": k}
    b = float(np.sum(w * xd * yd) / sxx)
    e = yd - b * xd
    adj = n / (n - k)
    var_b = float(np.sum(w * w * xd * xd * e * e) / (sxx * sxx)) * adj
    var_mean = float(np.sum(w * w * e * e)) * adj  # robust variance of the weighted mean level
    # residual variance per unit of weight (Var(e_i) = sigma2 / raw weight): the lack of fit a
    # period's mean carries beyond the line, sigma2 / (the period's total weight)
    sigma2 = float(np.sum(w_raw * e * e)) / (n - k)
    ss_res = float(np.sum(w * e * e))
    ss_tot = float(np.sum(w * (y - my) ** 2))
    return {"slope": b, "se": math.sqrt(var_b), "intercept": my - b * mx, "mean_x": mx, "mean_y": my,
            "var_mean": var_mean, "sigma2": sigma2, "n": n, "k": k, "df": n - k,
            "r2": 1 - ss_res / ss_tot if ss_tot > 0 else None}


def _ci(est: float | None, se: float | None, crit: float = Z95) -> tuple[float | None, float | None]:
    if est is None:
        return None, None
    if se is None:
        return est, est
    return est - crit * se, est + crit * se


def _prod_var(mean_a: float, var_a: float, mean_b: float, var_b: float) -> float:
    """Var(A x B) for independent A, B (Goodman's exact formula)."""
    return mean_a * mean_a * var_b + mean_b * mean_b * var_a + var_a * var_b


# ----------------------------------------------------------------------------- tables
TABLES = {
    "bridge_causal": """
        -- Grain: quarter x measure. Treatment vs holdout, intention-to-treat: the per-user means
        -- of both groups, the difference (treatment - holdout), its 95% interval and how it was
        -- obtained; CUPED beside it when a pre-period exists.
        create or replace table bridge_causal (
            quarter varchar, measure varchar, unit varchar, label varchar,
            treatment double, holdout double, diff double, se double, ci_low double, ci_high double,
            df double, p_value double, n_treatment bigint, n_holdout bigint, method varchar,
            cuped_diff double, cuped_ci_low double, cuped_ci_high double, cuped_theta double,
            cuped_variance_reduction double, cuped_note varchar, assumptions_version varchar)""",
    "bridge_nodes": """
        -- Grain: quarter x chain x node (position 0 = the AI metric). The node's value in the
        -- quarter (AI metric: the L6 value over all interactions; other nodes: the treatment
        -- population), its standard error, and its counterfactual value without the AI feature
        -- (holdout-based or zero; null when undefined).
        create or replace table bridge_nodes (
            quarter varchar, chain_id varchar, position integer, node varchar, label varchar,
            kind varchar, measure varchar, unit varchar, value double, se double,
            counterfactual double, counterfactual_se double, counterfactual_basis varchar)""",
    "bridge_edges": """
        -- Grain: quarter x chain x step (1..3). The edge's slope (units of `to` per unit of
        -- `from`), its 95% interval, method (causal | observational), estimator and basis;
        -- dose-response edges also carry the cells they rest on and the fitted level at the
        -- quarter's value of `from`.
        create or replace table bridge_edges (
            quarter varchar, chain_id varchar, step integer, from_node varchar, to_node varchar,
            method varchar, estimator varchar, estimate double, se double, ci_low double, ci_high double,
            unit varchar, from_unit varchar, to_unit varchar, n_cells integer, cells varchar,
            fixed_effects varchar, r2 double, fitted_to double, fitted_to_se double, basis varchar,
            assumptions varchar)""",
    "bridge_chains": """
        -- Grain: quarter x chain. usd_* = P&L impact in USD (positive = saving or revenue).
        -- usd_impact: the quarter against the holdout counterfactual, scaled to the treatment
        -- population; usd_implied: what the chain's edges imply from the AI metric; consistent:
        -- their 95% intervals overlap (null when either is missing); gap_material: the gap
        -- exceeds consistency_tolerance x the larger figure; usd_per_unit: the chain's
        -- marginal dollars per unit of the AI metric (the what-if slope).
        create or replace table bridge_chains (
            quarter varchar, chain_id varchar, name varchar, ai_metric varchar, ai_metric_value double,
            ai_metric_unit varchar, pnl_node varchar, pnl_sign integer,
            usd_impact double, usd_ci_low double, usd_ci_high double, impact_method varchar,
            usd_implied double, usd_implied_ci_low double, usd_implied_ci_high double,
            consistent boolean, gap_material boolean, consistency_tolerance double, note varchar, usd_per_unit double, usd_per_unit_ci_low double,
            usd_per_unit_ci_high double, assumptions varchar, assumptions_version varchar,
            config_version varchar)""",
    "bridge_waterfall": """
        -- Grain: quarter x chain: the quarter-over-quarter change of the chain's usd_impact
        -- (this quarter - previous_quarter), split along the chain into the part carried by
        -- the AI metric's move (usd_via_ai_metric = midpoint usd_per_unit x the metric's change)
        -- and the rest (volume, mix, conversion rates: usd_other), so that
        -- usd_via_ai_metric + usd_other = usd_change exactly and the chains' usd_change add up
        -- to the total change (sum of usd_current - sum of usd_previous).
        create or replace table bridge_waterfall (
            quarter varchar, previous_quarter varchar, chain_id varchar, name varchar, position integer,
            usd_previous double, usd_current double, usd_change double, usd_ci_low double, usd_ci_high double,
            ai_metric varchar, ai_metric_previous double, ai_metric_current double,
            usd_via_ai_metric double, usd_other double)""",
}


def _create_tables(con) -> None:
    for ddl in TABLES.values():
        con.execute(ddl)


def _insert(con, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    con.executemany(f"insert into {table} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                    [[_clean(r.get(c)) for c in cols] for r in rows])


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


# ----------------------------------------------------------------------------- causal
def _quarter_arrays(con) -> list[tuple[str, dict[str, np.ndarray]]]:
    """bridge_user_quarter as numeric numpy arrays, one slice per quarter (nulls -> NaN)."""
    counts = con.execute("select quarter, count(*) from bridge_user_quarter group by quarter order by quarter"
                         ).fetchall()
    if not counts:
        return []
    tbl = con.sql("""
        select experiment_group = 'treatment' as is_treatment,
               experiment_group = 'holdout' as is_holdout,
               cast(tickets as double) as tickets, cast(agent_hours as double) as agent_hours,
               cast(retained_7d as double) as retained_7d, retention_eligible,
               cast(pre_tickets as double) as pre_tickets, cast(pre_agent_hours as double) as pre_agent_hours,
               cast(pre_active_days as double) as pre_active_days
        from bridge_user_quarter order by quarter""").to_arrow_table()
    cols = {}
    for name in tbl.column_names:
        col = tbl.column(name)
        if col.type == "bool":
            cols[name] = col.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
        else:
            cols[name] = col.to_numpy(zero_copy_only=False).astype(float)
    out, i = [], 0
    for quarter, n in counts:
        out.append((quarter, {k: v[i:i + n] for k, v in cols.items()}))
        i += n
    return out


def causal_estimates(con, settings: dict | None = None, assm: dict | None = None) -> dict[str, dict]:
    """{quarter: {measure: {...}}} from bridge_user_quarter (which must exist)."""
    settings = settings or bridge_settings()
    assm = assm or assumptions()
    out: dict[str, dict] = {}
    for q, a in _quarter_arrays(con):
        has_pre = settings.get("experiment_start") is not None and not np.isnan(a["pre_tickets"]).all()
        res = {}
        for name, spec in CAUSAL_MEASURES.items():
            m = a[spec["subset"]] if spec.get("subset") else np.ones(len(a["tickets"]), dtype=bool)
            t, h = m & a["is_treatment"], m & a["is_holdout"]
            y = a[spec["column"]]
            yt, yh = y[t], y[h]
            scale = 1.0
            if spec.get("scale_assumption"):
                scale = float(assm["items"][spec["scale_assumption"]]["value"])
                yt, yh = yt * scale, yh * scale
            if settings["interval"] == "bootstrap":
                r = bootstrap(yt, yh, settings["bootstrap_draws"])
                r["method"] = METHOD_BOOT.format(draws=settings["bootstrap_draws"])
            else:
                r = welch(yt, yh)
                r["method"] = METHOD_WELCH
            r.update(unit=spec["unit"], label=spec["label"])
            if has_pre:
                cov = a[spec["covariate"]] * (scale if spec["covariate"] == "pre_agent_hours" else 1.0)
                r["cuped"] = cuped(yt, yh, cov[t], cov[h])
            else:
                r["cuped"] = {"available": False,
                              "note": "no pre-period: set [causal] experiment_start in config/bridge.toml when the "
                                      "warehouse holds data from before the experiment started"}
            res[name] = r
        out[q] = res
    return out


# ----------------------------------------------------------------------------- quarter context
@dataclass
class NodeValue:
    value: float | None
    se: float | None = None
    cf: float | None = None          # counterfactual (no AI feature)
    cf_se: float | None = None
    delta: float | None = None       # value - cf, with its own se (holdout differences are measured jointly)
    delta_se: float | None = None
    delta_crit: float = Z95
    delta_ci: tuple | None = None     # explicit interval of delta (e.g. Welch t)
    basis: str = ""

    def __post_init__(self):
        if self.delta is None and self.value is not None and self.cf is not None:
            self.delta = self.value - self.cf
            self.delta_se = math.sqrt((self.se or 0) ** 2 + (self.cf_se or 0) ** 2)


@dataclass
class Quarter:
    label: str
    start: dt.date
    end: dt.date
    complete: bool
    l6: dict
    base: dict
    causal: dict
    user: dict
    nodes: dict = field(default_factory=dict)
    conv: dict = field(default_factory=dict)


def _quarter_base(con) -> dict[str, dict]:
    rows = con.execute("select * from bridge_quarter_base").fetchall()
    cols = [d[0] for d in con.description]
    per_q: dict[str, dict] = {}
    for r in rows:
        d = dict(zip(cols, r))
        per_q.setdefault(d["quarter"], {})[d["feature"]] = d
    return per_q


def _user_stats(con) -> dict[str, dict]:
    """Per quarter: treatment-population sums the conversions need (ratio estimators over users)."""
    rows = con.execute("""
        select quarter,
               count(*) filter (where experiment_group = 'treatment') as n_t,
               coalesce(sum(tickets) filter (where experiment_group = 'treatment'), 0) as tickets_t,
               coalesce(sum(agent_hours) filter (where experiment_group = 'treatment'), 0) as hours_t,
               coalesce(sum(tickets * tickets) filter (where experiment_group = 'treatment'), 0) as tt,
               coalesce(sum(agent_hours * agent_hours) filter (where experiment_group = 'treatment'), 0) as hh,
               coalesce(sum(tickets * agent_hours) filter (where experiment_group = 'treatment'), 0) as th,
               count(*) filter (where experiment_group = 'treatment' and ai_retention_eligible) as n_ai_eligible_t,
               count(*) filter (where experiment_group = 'treatment' and retention_eligible) as n_eligible_t
        from bridge_user_quarter group by quarter""").fetchall()
    cols = [d[0] for d in con.description]
    return {r[0]: dict(zip(cols, r)) for r in rows}


def _baseline(assm: dict, feature: str) -> float:
    b = assm["items"]["manual_baseline_minutes_per_task"]
    return float((b.get("by_feature") or {}).get(feature, b.get("default", b.get("value", 0.0))))


def _value(assm: dict, name: str) -> float:
    return float(assm["items"][name]["value"])


def _assumption_se(assm: dict, name: str) -> float:
    a = assm["items"][name]
    if "low" in a and "high" in a:
        return (float(a["high"]) - float(a["low"])) / (2 * Z95)
    return 0.0


def _node_values(q: Quarter, assm: dict) -> dict[str, NodeValue]:
    """Every measure's value in quarter q (treatment population unless an AI metric)."""
    b, u, c, l6 = q.base, q.user, q.causal, q.l6
    feats = list(b.values())
    I_t = sum(f["interactions"] for f in feats)
    V_t = sum(f["valid"] for f in feats)
    ce_n = sum(f["ce_n"] for f in feats)
    ce_s = sum(f["ce_intervention_s"] for f in feats)
    ce_ss = sum(f["ce_intervention_s_sq"] for f in feats)
    cost_t = sum(f["cost_usd"] for f in feats)
    infra_t = sum(f["infra_cost_usd"] * f["interactions"] / f["all_interactions"]
                  for f in feats if f["all_interactions"])
    n_t = u.get("n_t", 0) or 0
    out: dict[str, NodeValue] = {}

    # AI metrics: the L6 values of the quarter (all interactions), as the scorecard shows them
    def binom_se(p, n):
        return math.sqrt(p * (1 - p) / n) if p is not None and n else None

    out["tcr"] = NodeValue(l6.get("tcr"), binom_se(l6.get("tcr"), l6.get("interactions")),
                           basis="L6 TCR of the quarter (all interactions)")
    out["hr"] = NodeValue(l6.get("hr"), binom_se(l6.get("hr"), l6.get("adjudicated")),
                          basis="L6 HR of the quarter (final verdicts)")
    out["tta_p50_s"] = NodeValue(l6.get("tta_p50_s"), None, basis="L6 TTA p50 of the quarter")
    out["hitl_per_100"] = NodeValue(l6.get("hitl_per_100"), None, basis="L6 HitL-F of the quarter")
    rd = l6.get("retention_delta_pts")
    rd_se = ((l6["rd_ci_high"] - l6["rd_ci_low"]) / (2 * Z95)
             if rd is not None and l6.get("rd_ci_high") is not None else None)
    out["retention_delta_pts"] = NodeValue(rd, rd_se, cf=0.0 if rd is not None else None, cf_se=0.0,
                                           basis="L6 RΔ of the quarter (AI users vs non-AI users, observational); "
                                                 "without the AI feature there is no difference (0)")
    out["cpvo_usd"] = NodeValue(l6.get("cpvo_usd"), _cpvo_se(feats, l6.get("cpvo_usd")),
                                cf=0.0 if l6.get("cpvo_usd") is not None else None,
                                cf_se=0.0, basis="L6 CPVO of the quarter; the holdout has no AI spend")

    # support: tickets and agent hours of the treatment population vs the holdout's rates
    tk, hr_ = c.get("tickets_per_user") or {}, c.get("agent_hours_per_user") or {}
    if I_t and n_t and tk.get("diff") is not None:
        k = 1000.0 * n_t / I_t
        var_t = (u["tt"] - u["tickets_t"] ** 2 / n_t) / max(n_t - 1, 1)
        out["support_contacts_per_1k"] = NodeValue(
            1000.0 * u["tickets_t"] / I_t, k * math.sqrt(var_t / n_t),
            cf=k * tk["holdout"], cf_se=k * _group_se(tk, "holdout"),
            delta=k * tk["diff"], delta_se=k * tk["se"], delta_ci=(k * tk["ci_low"], k * tk["ci_high"]),
            basis="treatment tickets per 1,000 treatment AI interactions; counterfactual: the holdout's "
                  "tickets per user x treatment users, per 1,000 treatment AI interactions")
    else:
        out["support_contacts_per_1k"] = NodeValue(1000.0 * u.get("tickets_t", 0) / I_t if I_t else None)
    if n_t and hr_.get("diff") is not None:
        var_h = (u["hh"] - u["hours_t"] ** 2 / n_t) / max(n_t - 1, 1)
        rate = _value(assm, "agent_cost_per_hour_usd")
        for name, s in (("agent_hours", 1.0), ("support_cost_usd", rate)):
            out[name] = NodeValue(
                s * u["hours_t"], s * math.sqrt(n_t * var_h), cf=s * hr_["holdout"] * n_t,
                cf_se=s * n_t * _group_se(hr_, "holdout"), delta=s * n_t * hr_["diff"], delta_se=s * n_t * hr_["se"],
                delta_ci=(s * n_t * hr_["ci_low"], s * n_t * hr_["ci_high"]),
                basis=("treatment agent hours; counterfactual: holdout agent hours per user x treatment users"
                       + ("; x agent_cost_per_hour_usd" if s != 1.0 else "")))
    else:
        out["agent_hours"] = NodeValue(u.get("hours_t"))
        out["support_cost_usd"] = NodeValue(None if u.get("hours_t") is None else
                                            u["hours_t"] * _value(assm, "agent_cost_per_hour_usd"))

    # review: corrections and escalations, and the human time on them
    if I_t:
        p = ce_n / I_t
        out["corrections_escalations_per_100"] = NodeValue(
            100.0 * p, 100.0 * math.sqrt(p * (1 - p) / I_t), cf=0.0, cf_se=0.0,
            basis="treatment AI interactions with outcome corrected or escalated, per 100; the holdout has "
                  "no AI queries (0)")
    else:
        out["corrections_escalations_per_100"] = NodeValue(None)
    rm = _value(assm, "review_minutes_per_correction")
    var_iv = (ce_ss - ce_s * ce_s / ce_n) / (ce_n - 1) if ce_n > 1 else 0.0
    hours = ce_s / 3600.0 + ce_n * rm / 60.0
    hours_se = math.sqrt(max(ce_n * var_iv, 0.0)) / 3600.0
    rr = _value(assm, "reviewer_cost_per_hour_usd")
    out["human_review_hours"] = NodeValue(hours, hours_se, cf=0.0, cf_se=0.0,
                                          basis="intervention time on corrected/escalated treatment outputs + "
                                                "review_minutes_per_correction each; holdout: none")
    out["review_cost_usd"] = NodeValue(hours * rr, hours_se * rr, cf=0.0, cf_se=0.0,
                                       basis="human review hours x reviewer_cost_per_hour_usd")

    # retention: incremental retained users, measured against the holdout
    rt = c.get("retained_7d_share") or {}
    per_user = _value(assm, "revenue_per_retained_user_month_usd") * _value(assm, "retention_credit_months")
    if rt.get("diff") is not None:
        n_el = rt["n_treatment"]
        for name, s in (("incremental_retained_users", 1.0), ("retained_revenue_usd", per_user)):
            out[name] = NodeValue(s * n_el * rt["diff"], s * n_el * rt["se"], cf=0.0, cf_se=0.0,
                                  delta_ci=(s * n_el * rt["ci_low"], s * n_el * rt["ci_high"]),
                                  basis="holdout-measured: (treatment - holdout) 7-day retention x the treatment "
                                        "group's eligible users" + (" x revenue per retained user" if s != 1 else ""))
    else:
        out["incremental_retained_users"] = NodeValue(None)
        out["retained_revenue_usd"] = NodeValue(None)

    # productivity: minutes saved per task against the manual baseline
    n_tta = sum(f["tta_n"] for f in feats)
    if n_tta:
        saved = sum(f["tta_n"] * _baseline(assm, f["feature"]) - f["tta_sum_s"] / 60.0 for f in feats) / n_tta
        var_sum = sum(max(f["tta_sumsq_s"] - f["tta_sum_s"] ** 2 / f["tta_n"], 0.0) / 3600.0
                      for f in feats if f["tta_n"] > 1)
        saved_se = math.sqrt(var_sum) / n_tta
        vh = _value(assm, "user_hour_value_usd")
        out["minutes_saved_per_task"] = NodeValue(saved, saved_se, cf=0.0, cf_se=0.0,
                                                  basis="mean over treatment valid outputs with a TTA of (manual "
                                                        "baseline minutes of the feature - TTA / 60)")
        out["user_hours_saved"] = NodeValue(saved * V_t / 60.0, saved_se * V_t / 60.0, cf=0.0, cf_se=0.0,
                                            basis="minutes saved per task x treatment valid outputs / 60")
        out["productivity_value_usd"] = NodeValue(saved * V_t / 60.0 * vh, saved_se * V_t / 60.0 * vh,
                                                  cf=0.0, cf_se=0.0, basis="user hours saved x user_hour_value_usd")
    else:
        for name in ("minutes_saved_per_task", "user_hours_saved", "productivity_value_usd"):
            out[name] = NodeValue(None)

    # spend
    out["valid_outputs"] = NodeValue(float(V_t), 0.0, basis="treatment valid outputs in the quarter")
    out["ai_spend_usd"] = NodeValue(cost_t + infra_t, 0.0, cf=0.0, cf_se=0.0,
                                    basis="treatment inference cost + infra cost allocated by the treatment "
                                          "share of each feature's interactions; the holdout spends nothing")
    q.conv = {"I_t": I_t, "V_t": V_t, "ce_n": ce_n, "ce_s": ce_s, "var_iv": var_iv, "n_t": n_t,
              "cpvo": l6.get("cpvo_usd")}
    return out


def _cpvo_se(feats: list[dict], cpvo: float | None) -> float | None:
    """Delta-method SE of CPVO = (cost + infra) / valid over the quarter's interactions
    (interactions as the sampling units, infra cost fixed)."""
    n = sum(f["all_interactions"] for f in feats)
    V = sum(f["all_valid"] for f in feats)
    if cpvo is None or n < 2 or not V:
        return None
    C = sum(f["all_cost_usd"] for f in feats)
    var_c = (sum(f["all_cost_sq"] for f in feats) - C * C / n) / (n - 1)
    cov_cv = (sum(f["all_cost_valid"] for f in feats) - C * V / n) / (n - 1)
    var_v = (V - V * V / n) / (n - 1)
    var = n * (var_c - 2 * cpvo * cov_cv + cpvo * cpvo * var_v) / (V * V)
    return math.sqrt(max(var, 0.0))


def _group_se(r: dict, group: str) -> float:
    """SE of one group's mean, recovered from the Welch pieces (stored per group below)."""
    return r.get(f"se_{group}") or 0.0


# ----------------------------------------------------------------------------- edges
def _cells(con, grain: str, assm: dict, min_n: int) -> dict[str, np.ndarray]:
    table = CELL_GRAINS[grain]
    tbl = con.sql(f"select * from {table} where interactions >= $n", params={"n": min_n}).to_arrow_table()
    cols = {n: tbl.column(n).to_numpy(zero_copy_only=False) for n in tbl.column_names}
    if grain == "week_domain" and len(tbl):
        base = np.array([_baseline(assm, f) for f in cols["feature"]], dtype=float)
        tta = np.array([np.nan if v is None else v for v in cols["tta_mean_s"]], dtype=float)
        cols["minutes_saved_per_task"] = base - tta / 60.0
    return cols


def _dose_response(cells: dict, edge: dict, nodes: dict, min_cells: int) -> dict:
    xcol = MEASURES[nodes[edge["from"]]["measure"]]["cells"][edge["cells"]]
    ycol = MEASURES[nodes[edge["to"]]["measure"]]["cells"][edge["cells"]]
    if not cells or xcol not in cells or not len(cells[xcol]):
        return {"slope": None, "n": 0}
    x = np.array([np.nan if v is None else v for v in cells[xcol]], dtype=float)
    y = np.array([np.nan if v is None else v for v in cells[ycol]], dtype=float)
    w = cells["interactions"].astype(float)
    ok = np.isfinite(x) & np.isfinite(y) & (w > 0)
    if ok.sum() < min_cells:
        return {"slope": None, "n": int(ok.sum())}
    groups = None
    if edge["fixed_effects"] == "slice":
        groups = cells["slice"][ok]
    elif edge["fixed_effects"] == "week":
        groups = np.array([str(v) for v in cells["week_start"][ok]])
    fit = wls_slope(x[ok], y[ok], w[ok], groups)
    fit["weeks"] = np.array(cells["week_start"][ok], dtype="datetime64[D]")
    fit["weights"] = w[ok]
    return fit


def _edge_estimate(edge: dict, q: Quarter, nodes: dict, fits: dict, assm: dict) -> dict:
    """Slope, se, 95% interval and basis of one edge in quarter q."""
    est = edge["estimator"]
    out = {"method": edge["method"], "estimator": est, "estimate": None, "se": None, "ci_low": None,
           "ci_high": None, "n_cells": None, "cells": None, "fixed_effects": None, "r2": None,
           "fitted_to": None, "fitted_to_se": None, "basis": "", "assumptions": edge.get("assumptions", [])}
    if est == "dose_response":
        fit = fits[(edge["from"], edge["to"], edge["cells"], edge["fixed_effects"])]
        out.update(n_cells=fit.get("n"), cells=edge["cells"], fixed_effects=edge["fixed_effects"])
        if fit.get("slope") is None:
            out["basis"] = (f"dose-response across {edge['cells'].replace('_', ' x ')} cells: too few usable cells "
                            f"({fit.get('n', 0)})")
            return out
        crit = _t_crit(fit["df"])
        lo, hi = _ci(fit["slope"], fit["se"], crit)
        out.update(estimate=fit["slope"], se=fit["se"], ci_low=lo, ci_high=hi, r2=fit.get("r2"))
        x0 = q.nodes[nodes[edge["from"]]["measure"]].value
        if x0 is not None:
            # the level the line predicts for a quarter at x0: the fit's uncertainty plus the
            # lack of fit a quarter's mean carries (residual variance / the quarter's weight)
            lo_w, hi_w = np.datetime64(q.start - dt.timedelta(days=6)), np.datetime64(q.end)
            w_q = float(fit["weights"][(fit["weeks"] >= lo_w) & (fit["weeks"] <= hi_w)].sum())
            lack = fit["sigma2"] / w_q if w_q > 0 else 0.0
            out["fitted_to"] = fit["mean_y"] + fit["slope"] * (x0 - fit["mean_x"])
            out["fitted_to_se"] = math.sqrt((x0 - fit["mean_x"]) ** 2 * fit["se"] ** 2 + fit["var_mean"] + lack)
        fe = {"none": "", "slice": ", slice fixed effects", "week": ", week fixed effects"}[edge["fixed_effects"]]
        out["basis"] = (f"dose-response: WLS of {edge['to']} on {edge['from']} across {fit['n']} "
                        f"{edge['cells'].replace('_', ' x ')} cells (weights: interactions{fe}; HC1 errors; "
                        f"all weeks in the warehouse)")
        return out
    if est == "assumption":
        val, var = 1.0, 0.0
        for name in edge["assumptions"]:
            v, s = _value(assm, name), _assumption_se(assm, name)
            var = _prod_var(val, var, v, s * s)
            val *= v
        se = math.sqrt(var)
        lo, hi = _ci(val, se)
        out.update(estimate=val, se=se, ci_low=lo, ci_high=hi,
                   basis="assumption: " + " x ".join(f"{n} = {_value(assm, n):g} {assm['items'][n]['unit']}"
                                                    for n in edge["assumptions"])
                         + (" (interval from the assumptions' low/high)" if se else " (taken as exact)"))
        return out
    if est == "holdout_ratio":
        num, den = q.causal.get(edge["numerator"]) or {}, q.causal.get(edge["denominator"]) or {}
        scale = {"one": 1.0, "treatment_population": float(q.conv["n_t"]),
                 "treatment_interactions_per_1k": q.conv["I_t"] / 1000.0,
                 "treatment_interactions_per_100": q.conv["I_t"] / 100.0,
                 }[edge["scale"]]
        if num.get("diff") is None or not den.get("diff") or scale is None:
            out["basis"] = "holdout ratio: no treatment-vs-holdout difference in the denominator"
            return out
        r = num["diff"] / den["diff"]
        cov = num.get("cov_with", {}).get(edge["denominator"], 0.0)
        var = (num["se"] ** 2 + r * r * den["se"] ** 2 - 2 * r * cov) / den["diff"] ** 2
        se = math.sqrt(max(var, 0.0)) * abs(scale)
        lo, hi = _ci(r * scale, se)
        out.update(estimate=r * scale, se=se, ci_low=lo, ci_high=hi,
                   basis=f"causal (intention-to-treat): ({edge['numerator']} difference) / ({edge['denominator']} "
                         f"difference) x {edge['scale']}, delta-method interval")
        return out
    # conversion
    name = edge["conversion"]
    cv = q.conv
    slope, se = None, 0.0
    if name == "agent_hours_per_contact":
        u = q.user
        if u.get("tickets_t") and cv["I_t"]:
            n = u["n_t"]
            R = u["hours_t"] / u["tickets_t"]
            # ratio estimator over users: var(R) = var(h - R t) / (n tbar^2)
            var_d = (u["hh"] - 2 * R * u["th"] + R * R * u["tt"]) / max(n - 1, 1)
            tbar = u["tickets_t"] / n
            se_r = math.sqrt(max(var_d, 0.0) / n) / tbar
            slope, se = R * cv["I_t"] / 1000.0, se_r * cv["I_t"] / 1000.0
    elif name == "review_hours_per_correction":
        if cv["ce_n"] and cv["I_t"]:
            rm = _value(assm, "review_minutes_per_correction")
            per = cv["ce_s"] / cv["ce_n"] / 3600.0 + rm / 60.0
            se_per = math.sqrt(cv["var_iv"] / cv["ce_n"]) / 3600.0
            slope, se = per * cv["I_t"] / 100.0, se_per * cv["I_t"] / 100.0
    elif name == "ai_users_per_point":
        slope = (q.user.get("n_ai_eligible_t") or 0) / 100.0
    elif name == "tasks_per_hour_saved":
        slope = cv["V_t"] / 60.0
    elif name == "valid_outputs_at_spend":
        if cv["cpvo"]:
            slope = -cv["V_t"] / cv["cpvo"]
    elif name == "replacement_cost_per_valid_output":
        if cv["cpvo"] is not None:
            slope = -cv["cpvo"]
    if slope is not None:
        lo, hi = _ci(slope, se)
        out.update(estimate=slope, se=se, ci_low=lo, ci_high=hi)
    out["basis"] = "measured in the quarter: " + CONVERSIONS[name]["basis"] + (
        "" if se else " (a count or identity: no sampling interval)")
    return out


# ----------------------------------------------------------------------------- chains
def _chain_quarter(chain: dict, q: Quarter, fits: dict, assm: dict, version: str, cfg_version: str,
                   tolerance: float) -> dict:
    nodes = {n["name"]: n for n in chain["nodes"]}
    node_rows, edge_rows = [], []
    for i, n in enumerate(chain["nodes"]):
        v = q.nodes[n["measure"]]
        node_rows.append({"quarter": q.label, "chain_id": chain["id"], "position": i, "node": n["name"],
                          "label": n["label"], "kind": n["kind"], "measure": n["measure"], "unit": n["unit"],
                          "value": v.value, "se": v.se, "counterfactual": v.cf, "counterfactual_se": v.cf_se,
                          "counterfactual_basis": v.basis})
    edges = []
    for k, e in enumerate(chain["edges"]):
        est = _edge_estimate(e, q, nodes, fits, assm)
        edges.append(est)
        edge_rows.append({"quarter": q.label, "chain_id": chain["id"], "step": k + 1, "from_node": e["from"],
                          "to_node": e["to"], "unit": e["unit"], "from_unit": e["from_unit"],
                          "to_unit": e["to_unit"], **{kk: vv for kk, vv in est.items() if kk != "assumptions"},
                          "assumptions": json.dumps(est["assumptions"])})
    sign = chain["pnl_sign"]
    last = q.nodes[chain["nodes"][-1]["measure"]]

    # measured against the holdout counterfactual
    usd, usd_lo, usd_hi, impact_method = None, None, None, None
    if last.delta is not None:
        usd = sign * last.delta
        if last.delta_ci is not None:
            lo, hi = sorted((sign * last.delta_ci[0], sign * last.delta_ci[1]))
        else:
            lo, hi = _ci(usd, last.delta_se)
        usd_lo, usd_hi = lo, hi
        impact_method = ("causal: treatment vs holdout (intention-to-treat), scaled to the treatment population"
                         if MEASURES[chain["nodes"][-1]["measure"]].get("holdout_measured")
                         else "measured on the treatment population; the holdout (never offered the AI) has none "
                              "of this P&L line")

    # implied by the chain: propagate the AI metric's shift against the counterfactual
    d, var, reason = None, None, None
    first = q.nodes[chain["nodes"][0]["measure"]]
    if first.value is not None and first.cf is not None:
        d, var = first.value - first.cf, (first.se or 0.0) ** 2
    for k, (e, est) in enumerate(zip(chain["edges"], edges)):
        to_v = q.nodes[nodes[e["to"]]["measure"]]
        if e["estimator"] == "dose_response":
            if est["fitted_to"] is None or to_v.cf is None:
                d, reason = None, (f"the dose-response edge {e['from']} → {e['to']} has no estimate"
                                   if est["fitted_to"] is None else f"`{e['to']}` has no counterfactual value")
                break
            d = est["fitted_to"] - to_v.cf
            var = est["fitted_to_se"] ** 2 + (to_v.cf_se or 0.0) ** 2
        else:
            if d is None or est["estimate"] is None:
                d = None
                reason = reason or (f"edge {e['from']} → {e['to']} has no estimate" if est["estimate"] is None
                                    else f"the AI metric `{chain['ai_metric']}` has no counterfactual value")
                break
            var = _prod_var(d, var, est["estimate"], (est["se"] or 0.0) ** 2)
            d = d * est["estimate"]
    implied = implied_lo = implied_hi = None
    if d is not None:
        implied = sign * d
        implied_lo, implied_hi = _ci(implied, math.sqrt(max(var, 0.0)))

    # the chain's marginal dollars per unit of the AI metric (what-if slope)
    per_unit, pv = 1.0, 0.0
    for est in edges:
        if est["estimate"] is None:
            per_unit = None
            break
        pv = _prod_var(per_unit, pv, est["estimate"], (est["se"] or 0.0) ** 2)
        per_unit *= est["estimate"]
    pu_lo = pu_hi = None
    if per_unit is not None:
        per_unit = sign * per_unit
        pu_lo, pu_hi = _ci(per_unit, math.sqrt(pv))

    consistent, material, note = _consistency(chain, q, usd, usd_lo, usd_hi, implied, implied_lo, implied_hi,
                                              edges, reason, tolerance)
    used = {n: {"value": assm["items"][n].get("value"), "unit": assm["items"][n]["unit"],
                **({"by_feature": assm["items"][n]["by_feature"], "default": assm["items"][n].get("default")}
                   if "by_feature" in assm["items"][n] else {}),
                **({"low": assm["items"][n]["low"], "high": assm["items"][n]["high"]}
                   if "low" in assm["items"][n] and "high" in assm["items"][n] else {})}
            for n in chain["assumptions"]}
    row = {"quarter": q.label, "chain_id": chain["id"], "name": chain["name"], "ai_metric": chain["ai_metric"],
           "ai_metric_value": first.value, "ai_metric_unit": chain["nodes"][0]["unit"],
           "pnl_node": chain["nodes"][-1]["name"], "pnl_sign": sign,
           "usd_impact": usd, "usd_ci_low": usd_lo, "usd_ci_high": usd_hi, "impact_method": impact_method,
           "usd_implied": implied, "usd_implied_ci_low": implied_lo, "usd_implied_ci_high": implied_hi,
           "consistent": consistent, "gap_material": material, "consistency_tolerance": tolerance,
           "note": note, "usd_per_unit": per_unit, "usd_per_unit_ci_low": pu_lo,
           "usd_per_unit_ci_high": pu_hi, "assumptions": json.dumps(used), "assumptions_version": version,
           "config_version": cfg_version}
    return {"chain": row, "nodes": node_rows, "edges": edge_rows}


def _usd(v) -> str:
    if v is None:
        return "n/a"
    s = "−" if v < 0 else "+"  # a minus sign, as the tables and charts print it
    return f"{s}${abs(v):,.0f}"


def gap_is_material(usd: float, implied: float, tolerance: float) -> bool:
    """The gap between the chain's implied and the measured dollars is larger than
    `tolerance` x the larger of the two figures (config/bridge.toml [consistency])."""
    return abs(implied - usd) > tolerance * max(abs(usd), abs(implied))


def _consistency(chain, q, usd, lo, hi, implied, ilo, ihi, edges, reason,
                 tolerance: float) -> tuple[bool | None, bool | None, str]:
    """(consistent, material, note): consistent = the two 95% intervals overlap (SPEC §4:
    disagreement is judged against the intervals); material = the gap exceeds the
    tolerance, so the disagreement is worth an exec's attention."""
    first = chain["nodes"][0]
    at_value = f"{first['label']} = {_value_text(q.nodes[first['measure']].value, first['unit'])}"  # "Hallucination Rate = 2.97%"
    label = {n["name"]: n["label"] for n in chain["nodes"]}
    if usd is None and implied is None:
        return None, None, (f"No dollar estimate for {q.label}: "
                            + (reason or "the quarter lacks a holdout comparison") + ".")
    if usd is None:
        return None, None, (f"The chain implies {_usd(implied)} ({_usd(ilo)} to {_usd(ihi)}) but there is no "
                            f"holdout measurement of this P&L line in {q.label} to check it against.")
    if implied is None:
        return None, None, (f"The holdout measures {_usd(usd)} ({_usd(lo)} to {_usd(hi)}); the chain cannot imply "
                            f"a figure to compare: {reason or 'an edge has no estimate'}.")
    measured = "holdout-measured" if MEASURES[chain["nodes"][-1]["measure"]].get("holdout_measured") else "measured"
    identity = all(e["estimator"] in ("conversion", "assumption") and not e["se"] for e in edges) and \
        all(e["estimator"] != "dose_response" for e in chain["edges"])
    overlap = ilo <= hi and lo <= ihi
    material = gap_is_material(usd, implied, tolerance)
    obs = [e for e in chain["edges"] if e["method"] == "observational" and e["estimator"] == "dose_response"]
    if not overlap and not material:
        gap = abs(implied - usd)
        return False, False, (
            f"Inconsistent but immaterial: the chain implies {_usd(implied)} (95% CI {_usd(ilo)} to {_usd(ihi)}) and "
            f"the {measured} figure is {_usd(usd)} (95% CI {_usd(lo)} to {_usd(hi)}); the intervals do not overlap, "
            f"but the gap ({_usd(gap)[1:]}, {gap / max(abs(usd), abs(implied)):.2%}) is under the {tolerance:.0%} "
            f"materiality bar set in the bridge config: both figures tell the same story.")
    if overlap:
        if identity and abs(implied - usd) <= 1e-6 * max(1.0, abs(usd)):
            return True, material, (f"The chain is an accounting identity at {q.label}'s values: it implies the measured "
                          f"{_usd(usd)} exactly.")
        return True, material, (f"Consistent: the chain implies {_usd(implied)} (95% CI {_usd(ilo)} to {_usd(ihi)}) from "
                      f"{at_value}, and the {measured} figure is "
                      f"{_usd(usd)} (95% CI {_usd(lo)} to {_usd(hi)}); the intervals overlap.")
    side = "above" if implied > usd else "below"
    why = ""
    if obs:
        e = obs[0]
        why = (f" The chain's {label[e['from']]} → {label[e['to']].lower()} edge is observational (dose-response "
               f"across weeks and slices): something besides {label[e['from']]} moves "
               f"{label[e['to']].lower()}, or the relation is not linear.")
    elif chain["ai_metric"] == "retention_delta_pts":
        why = (" RΔ compares AI users with non-AI users (observational): users who adopt the AI are more engaged "
               "to begin with, so RΔ credits the AI with retention the holdout comparison does not confirm."
               if implied > usd else
               " RΔ compares AI users with non-AI users (observational) and understates what the holdout measures.")
    return False, True, (f"Inconsistent: the chain implies {_usd(implied)} (95% CI {_usd(ilo)} to {_usd(ihi)}) from "
                   f"{at_value}, {_usd(abs(implied - usd))[1:]} {side} the "
                   f"{measured} {_usd(usd)} (95% CI {_usd(lo)} to {_usd(hi)}); the intervals do not overlap (the gap is "
                   f"{abs(implied - usd) / max(abs(usd), 1e-9):.1%} of the {measured} figure). Trust the "
                   f"{measured} figure for {q.label}'s impact and treat the chain's what-if as indicative.{why}")


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}"


def _value_text(v, unit: str) -> str:
    """An AI metric's value in the words an exec reads: 2.97%, +9.08 pts, 8.35 s, $0.0039."""
    if v is None:
        return "n/a"
    return {"share": f"{100 * v:.3g}%", "points": f"{v:+.3g} pts", "seconds": f"{v:.3g} s",
            "USD per valid output": f"${v:.2g}"}.get(unit, f"{v:.4g} {unit}")


def _waterfall(chains: list[dict], by_q: dict[str, dict[str, dict]], labels: list[str]) -> list[dict]:
    rows = []
    for i, qlabel in enumerate(labels):
        if i == 0:
            continue
        prev = labels[i - 1]
        if _prev_quarter(qlabel) != prev:
            continue
        for pos, ch in enumerate(chains):
            cur, old = by_q[qlabel].get(ch["id"]), by_q[prev].get(ch["id"])
            if cur is None or old is None or cur["usd_impact"] is None or old["usd_impact"] is None:
                continue
            u1, u0 = round(cur["usd_impact"], 2), round(old["usd_impact"], 2)
            change = round(u1 - u0, 2)
            se1 = (cur["usd_ci_high"] - cur["usd_ci_low"]) / (2 * Z95)
            se0 = (old["usd_ci_high"] - old["usd_ci_low"]) / (2 * Z95)
            se = math.sqrt(se1 * se1 + se0 * se0)
            m1, m0 = cur["ai_metric_value"], old["ai_metric_value"]
            via = None
            if m1 is not None and m0 is not None and cur["usd_per_unit"] is not None and old["usd_per_unit"] is not None:
                via = round(0.5 * (cur["usd_per_unit"] + old["usd_per_unit"]) * (m1 - m0), 2)
            via = 0.0 if via is None else via
            rows.append({"quarter": qlabel, "previous_quarter": prev, "chain_id": ch["id"], "name": ch["name"],
                         "position": pos, "usd_previous": u0, "usd_current": u1, "usd_change": change,
                         "usd_ci_low": change - Z95 * se, "usd_ci_high": change + Z95 * se,
                         "ai_metric": ch["ai_metric"], "ai_metric_previous": m0, "ai_metric_current": m1,
                         "usd_via_ai_metric": via, "usd_other": round(change - via, 2)})
    return rows


def _prev_quarter(label: str) -> str:
    y, n = map(int, QUARTER_RE.match(label).groups())
    return f"{y - 1}Q4" if n == 1 else f"{y}Q{n - 1}"


# ----------------------------------------------------------------------------- build
def _model_params(settings: dict) -> dict:
    start = settings.get("experiment_start")
    return {"window_days": int(config.metric_contract()["retention"]["window_days"]),
            "pre_start": (start - dt.timedelta(days=settings["pre_period_days"])) if start else None,
            "pre_end": (start - dt.timedelta(days=1)) if start else None}


def run_models(con, settings: dict | None = None) -> None:
    """The bridge's SQL models (per-user and per-cell aggregates)."""
    params = _model_params(settings or bridge_settings())
    for model in SQL_MODELS:
        warehouse.run_model(con, model, params)


def run_models_causal(con, settings: dict | None = None) -> None:
    """Only the models the causal comparison needs (bridge_quarters, bridge_user_quarter):
    they read stg_users, stg_support_tickets, int_user_active_days and int_interactions
    (user_id, activity_date, experiment_group)."""
    params = _model_params(settings or bridge_settings())
    for model in SQL_MODELS[:2]:
        warehouse.run_model(con, model, params)


def build(con, run_id: str | None = None) -> dict:
    """Run the bridge inside the pipeline run: SQL aggregates, then the estimation tables."""
    chains = load_chains()
    settings = bridge_settings()
    assm = assumptions()
    run_models(con, settings)
    _create_tables(con)
    qrows = con.execute("select quarter, quarter_start, quarter_end, complete from bridge_quarters "
                        "order by quarter_start").fetchall()
    if not qrows:
        return {"quarters": []}
    from pipelines import l6

    l6q = {r["period_start"]: r for r in l6.l6_table(con, "quarter").iter_rows(named=True)}
    causal = causal_estimates(con, settings, assm)
    _add_group_ses(con, causal)
    base = _quarter_base(con)
    ustats = _user_stats(con)
    fits: dict = {}
    cells_cache: dict = {}
    for ch in chains:
        nodes = {n["name"]: n for n in ch["nodes"]}
        for e in ch["edges"]:
            if e["estimator"] != "dose_response":
                continue
            key = (e["from"], e["to"], e["cells"], e["fixed_effects"])
            if key not in fits:
                if e["cells"] not in cells_cache:
                    cells_cache[e["cells"]] = _cells(con, e["cells"], assm, settings["min_cell_interactions"])
                fits[key] = _dose_response(cells_cache[e["cells"]], e, nodes, settings["min_cells"])
    causal_rows, node_rows, edge_rows, chain_rows = [], [], [], []
    by_q: dict[str, dict] = {}
    labels = []
    for label, qs, qe, complete in qrows:
        q = Quarter(label=label, start=qs, end=qe, complete=bool(complete), l6=l6q.get(qs) or {},
                    base=base.get(label, {}), causal=causal.get(label, {}), user=ustats.get(label, {}))
        q.nodes = _node_values(q, assm)
        labels.append(label)
        for name, r in q.causal.items():
            cu = r.get("cuped") or {}
            causal_rows.append({"quarter": label, "measure": name, **{k: r.get(k) for k in (
                "unit", "label", "treatment", "holdout", "diff", "se", "ci_low", "ci_high", "df", "p_value",
                "n_treatment", "n_holdout", "method")},
                "cuped_diff": cu.get("diff"), "cuped_ci_low": cu.get("ci_low"), "cuped_ci_high": cu.get("ci_high"),
                "cuped_theta": cu.get("theta"), "cuped_variance_reduction": cu.get("variance_reduction"),
                "cuped_note": cu.get("note") or ("CUPED with the pre-period's behavior as covariate"
                                                 if cu.get("available") else None),
                "assumptions_version": assm["version"]})
        by_q[label] = {}
        for ch in chains:
            res = _chain_quarter(ch, q, fits, assm, assm["version"], settings["version"],
                                 settings["consistency_tolerance"])
            node_rows += res["nodes"]
            edge_rows += res["edges"]
            chain_rows.append(res["chain"])
            by_q[label][ch["id"]] = res["chain"]
    _insert(con, "bridge_causal", causal_rows)
    _insert(con, "bridge_nodes", node_rows)
    _insert(con, "bridge_edges", edge_rows)
    _insert(con, "bridge_chains", chain_rows)
    _insert(con, "bridge_waterfall", _waterfall(chains, by_q, labels))
    return {"quarters": labels}


def _add_group_ses(con, causal: dict) -> None:
    """Each group's SE of its mean (for counterfactual intervals) and the covariance of the
    tickets and agent-hours differences (for holdout_ratio edges)."""
    rows = con.execute("""
        select quarter, experiment_group, count(*) as n,
               var_samp(tickets) as v_t, var_samp(agent_hours) as v_h, covar_samp(tickets, agent_hours) as c_th
        from bridge_user_quarter group by all""").fetchall()
    stats_ = {(q, g): (n, vt, vh, c) for q, g, n, vt, vh, c in rows}
    for q, res in causal.items():
        for g in ("treatment", "holdout"):
            n, vt, vh, c = stats_.get((q, g), (0, None, None, None))
            for name, v in (("tickets_per_user", vt), ("agent_hours_per_user", vh)):
                if name in res and n and v is not None:
                    res[name][f"se_{g}"] = math.sqrt(v / n)
        nt, _, _, ct = stats_.get((q, "treatment"), (0, None, None, None))
        nh, _, _, chh = stats_.get((q, "holdout"), (0, None, None, None))
        if nt and nh and ct is not None and chh is not None and "agent_hours_per_user" in res:
            cov = ct / nt + chh / nh
            res["agent_hours_per_user"]["cov_with"] = {"tickets_per_user": cov}
            res["tickets_per_user"]["cov_with"] = {"agent_hours_per_user": cov}


# ----------------------------------------------------------------------------- reading
def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in rows]


def quarters(con) -> list[str]:
    """The quarters the bridge has estimates for, oldest first."""
    if not warehouse.table_exists(con, "bridge_chains"):
        return []
    return [r[0] for r in con.execute("select distinct quarter from bridge_chains order by quarter").fetchall()]


def default_quarter(con) -> str | None:
    """The latest complete quarter (the data reach its last day), else the latest one."""
    qs = quarters(con)
    if not qs:
        return None
    complete = [r[0] for r in con.execute(
        "select quarter from bridge_quarters where complete order by quarter").fetchall() if r[0] in qs]
    return complete[-1] if complete else qs[-1]


def _check_quarter(con, quarter: str | None) -> str:
    qs = quarters(con)
    if not qs:
        raise ValueError("the warehouse holds no KPI bridge results (no interactions, or it was built before the "
                         "bridge stage existed); rebuild it with `python -m pipelines run` or `demo`")
    if quarter is None:
        return default_quarter(con)
    q = str(quarter).strip().upper()
    if not QUARTER_RE.match(q):
        raise ValueError(f"--quarter {quarter!r} is not a quarter; write it like 2026Q3 "
                         f"(available: {', '.join(qs)})")
    if q not in qs:
        raise ValueError(f"unknown quarter {q}: the bridge has estimates for {', '.join(qs)}")
    return q


def report(con, quarter: str | None = None) -> dict:
    """The bridge for one quarter (default: the latest complete one), as the CLI's JSON."""
    q = _check_quarter(con, quarter)
    assm = assumptions()
    qinfo = _rows(con, "select * from bridge_quarters where quarter = ?", [q])[0]
    causal = {}
    rank = {m: i for i, m in enumerate(CAUSAL_MEASURES)}
    for r in sorted(_rows(con, "select * from bridge_causal where quarter = ?", [q]),
                    key=lambda r: (rank.get(r["measure"], 99), r["measure"])):
        causal[r["measure"]] = {
            "treatment": r["treatment"], "holdout": r["holdout"], "diff": r["diff"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n_treatment": r["n_treatment"],
            "n_holdout": r["n_holdout"], "method": r["method"], "unit": r["unit"], "se": r["se"],
            "p_value": r["p_value"], "label": r["label"],
            "cuped": ({"diff": r["cuped_diff"], "ci_low": r["cuped_ci_low"], "ci_high": r["cuped_ci_high"],
                       "theta": r["cuped_theta"], "variance_reduction": r["cuped_variance_reduction"],
                       "note": r["cuped_note"]} if r["cuped_diff"] is not None else
                      {"diff": None, "note": r["cuped_note"]})}
    order = {c["id"]: i for i, c in enumerate(load_chains())}
    edges = _rows(con, "select * from bridge_edges where quarter = ? order by chain_id, step", [q])
    nodes = _rows(con, "select * from bridge_nodes where quarter = ? order by chain_id, position", [q])
    chains = []
    for c in sorted(_rows(con, "select * from bridge_chains where quarter = ?", [q]),
                    key=lambda c: order.get(c["chain_id"], 99)):
        steps = [{"from": e["from_node"], "to": e["to_node"], "method": e["method"], "estimate": e["estimate"],
                  "ci_low": e["ci_low"], "ci_high": e["ci_high"], "unit": e["unit"], "estimator": e["estimator"],
                  "se": e["se"], "basis": e["basis"], "n_cells": e["n_cells"],
                  "assumptions": json.loads(e["assumptions"] or "[]")}
                 for e in edges if e["chain_id"] == c["chain_id"]]
        chains.append({
            "id": c["chain_id"], "name": c["name"], "ai_metric": c["ai_metric"],
            "ai_metric_value": c["ai_metric_value"], "ai_metric_unit": c["ai_metric_unit"],
            "steps": steps,
            "nodes": [{"node": n["node"], "label": n["label"], "kind": n["kind"], "unit": n["unit"],
                       "value": n["value"], "se": n["se"], "counterfactual": n["counterfactual"]}
                      for n in nodes if n["chain_id"] == c["chain_id"]],
            "usd_impact": c["usd_impact"], "usd_ci_low": c["usd_ci_low"], "usd_ci_high": c["usd_ci_high"],
            "impact_method": c["impact_method"],
            "usd_implied": c["usd_implied"], "usd_implied_ci_low": c["usd_implied_ci_low"],
            "usd_implied_ci_high": c["usd_implied_ci_high"],
            "consistent": c["consistent"], "gap_material": c["gap_material"], "note": c["note"],
            "usd_per_unit": c["usd_per_unit"], "usd_per_unit_ci_low": c["usd_per_unit_ci_low"],
            "usd_per_unit_ci_high": c["usd_per_unit_ci_high"],
            "assumptions": json.loads(c["assumptions"] or "{}"), "assumptions_version": c["assumptions_version"]})
    impacts = [c["usd_impact"] for c in chains if c["usd_impact"] is not None]
    # the assumptions the stored figures used (as recorded at build time), labelled from the file
    used: dict[str, dict] = {}
    for c in chains:
        for name, a in c["assumptions"].items():
            label = assm["items"].get(name, {}).get("label")
            used[name] = {**a, **({"label": label} if label else {})}
    version = chains[0]["assumptions_version"] if chains else assm["version"]
    wf_rows = _rows(con, "select * from bridge_waterfall where quarter = ? order by position", [q])
    waterfall: dict[str, Any] = {"previous_quarter": None, "start": None, "end": None, "steps": [],
                                 "total_change": None, "note": None}
    if wf_rows:
        prev = wf_rows[0]["previous_quarter"]
        start = round(sum(r["usd_previous"] for r in wf_rows), 2)
        total = round(sum(r["usd_change"] for r in wf_rows), 2)
        waterfall.update(
            previous_quarter=prev, start={"label": prev, "usd": start},
            end={"label": q, "usd": round(start + total, 2)}, total_change=total,
            steps=[{"chain": r["chain_id"], "label": r["name"], "usd_change": r["usd_change"],
                    "usd_ci_low": r["usd_ci_low"], "usd_ci_high": r["usd_ci_high"],
                    "usd_previous": r["usd_previous"], "usd_current": r["usd_current"],
                    "ai_metric": r["ai_metric"], "ai_metric_previous": r["ai_metric_previous"],
                    "ai_metric_current": r["ai_metric_current"],
                    "components": [{"part": "via_ai_metric", "usd": r["usd_via_ai_metric"]},
                                   {"part": "other", "usd": r["usd_other"]}]} for r in wf_rows],
            note=("The change of each chain's holdout-measured dollars from the previous quarter; each step splits "
                  "into the part carried by the AI metric's move (the chain's dollars per unit x the metric's "
                  "change) and the rest (volume, mix, conversion rates). Steps add up exactly to end - start; "
                  "step intervals treat the two quarters as independent."))
    else:
        waterfall["note"] = f"No previous quarter with bridge estimates before {q}: nothing to decompose."
    return {
        "quarter": q, "quarter_start": qinfo["quarter_start"].isoformat(),
        "quarter_end": qinfo["quarter_end"].isoformat(), "complete": bool(qinfo["complete"]),
        "quarters": quarters(con),
        "assumptions_version": version,
        "assumptions": used,
        "config_version": (con.execute("select max(config_version) from bridge_chains where quarter = ?", [q])
                           .fetchall()[0][0]),
        "sign_convention": "usd figures are P&L impact: positive = a saving or revenue, negative = a cost",
        "causal": causal,
        "chains": chains,
        "holdout_usd": round(sum(impacts), 2) if impacts else None,
        "waterfall": waterfall,
    }


def what_if(con, quarter: str, chain: str, new_value: float) -> dict:
    """Move the chain's AI metric to `new_value` (its own unit, e.g. TCR as a share): the
    implied change at every node and in dollars, with 95% intervals from the edges'
    intervals (independent edges, exact product variance). Zero at the current value."""
    q = _check_quarter(con, quarter)
    rows = _rows(con, "select * from bridge_chains where quarter = ? and (chain_id = ? or name = ?)",
                 [q, chain, chain])
    if not rows:
        names = [r[0] for r in con.execute("select chain_id from bridge_chains where quarter = ? order by chain_id",
                                           [q]).fetchall()]
        raise ValueError(f"unknown chain {chain!r}; the bridge has: {', '.join(names)}")
    c = rows[0]
    nodes = _rows(con, "select * from bridge_nodes where quarter = ? and chain_id = ? order by position",
                  [q, c["chain_id"]])
    edges = _rows(con, "select * from bridge_edges where quarter = ? and chain_id = ? order by step",
                  [q, c["chain_id"]])
    current = nodes[0]["value"]
    out = {"chain": c["chain_id"], "name": c["name"], "quarter": q, "ai_metric": c["ai_metric"],
           "unit": nodes[0]["unit"], "current_value": current, "new_value": float(new_value),
           "nodes": [], "usd_change": None, "usd_ci_low": None, "usd_ci_high": None,
           "assumptions_version": c["assumptions_version"], "assumptions": json.loads(c["assumptions"] or "{}")}
    if current is None:
        out["note"] = f"{c['ai_metric']} has no value in {q}, so it cannot be moved"
        return out
    delta, var = float(new_value) - current, 0.0
    out["nodes"].append({"node": nodes[0]["node"], "label": nodes[0]["label"], "unit": nodes[0]["unit"],
                         "current": current, "new": float(new_value), "change": delta,
                         "ci_low": delta, "ci_high": delta})
    ok = True
    for n, e in zip(nodes[1:], edges):
        if e["estimate"] is None or not ok:
            ok = False
            out["nodes"].append({"node": n["node"], "label": n["label"], "unit": n["unit"], "current": n["value"],
                                 "new": None, "change": None, "ci_low": None, "ci_high": None})
            continue
        var = _prod_var(delta, var, e["estimate"], (e["se"] or 0.0) ** 2)
        delta = delta * e["estimate"] + 0.0  # + 0.0: no negative zero
        lo, hi = _ci(delta, math.sqrt(max(var, 0.0)))
        lo, hi = lo + 0.0, hi + 0.0
        out["nodes"].append({"node": n["node"], "label": n["label"], "unit": n["unit"], "current": n["value"],
                             "new": None if n["value"] is None else n["value"] + delta, "change": delta,
                             "ci_low": lo, "ci_high": hi})
    if ok:
        s = c["pnl_sign"]
        last = out["nodes"][-1]
        out["usd_change"] = s * last["change"] + 0.0
        out["usd_ci_low"], out["usd_ci_high"] = sorted((s * last["ci_low"] + 0.0, s * last["ci_high"] + 0.0))
    else:
        out["note"] = "an edge of the chain has no estimate this quarter"
    return out


def edge_kind(step: dict) -> str:
    """How an edge was obtained, in the words the diagram, the tables and the CLI share:
    "causal", "observational" (a dose-response slope), or, for edges whose `method` is
    observational, a "measured rate" (a conversion measured in the quarter) or a business
    "assumption"."""
    return {"assumption": "assumption", "conversion": "measured rate"}.get(step.get("estimator"),
                                                                          step.get("method") or "")


# ----------------------------------------------------------------------------- CLI
def _num(v, nd=4) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{nd}g}" if abs(v) < 1000 else f"{v:,.0f}"


def report_text(rep: dict) -> str:
    lines = [f"KPI bridge — {rep['quarter']} ({rep['quarter_start']} to {rep['quarter_end']}"
             f"{'' if rep['complete'] else ', to date'}); assumptions {rep['assumptions_version']}",
             "Dollar figures are P&L impact (positive = saving or revenue).", "",
             "Treatment vs holdout (intention-to-treat, 95% CI):"]
    for name, c in rep["causal"].items():
        lines.append(f"  {name:<27} treatment {_num(c['treatment'])}  holdout {_num(c['holdout'])}  "
                     f"diff {_num(c['diff'])} [{_num(c['ci_low'])}, {_num(c['ci_high'])}]  "
                     f"n {c['n_treatment']:,}/{c['n_holdout']:,}")
    if rep["causal"]:
        lines.append(f"  method: {next(iter(rep['causal'].values()))['method']}")
    for ch in rep["chains"]:
        lines += ["", f"{ch['name']}  ({ch['ai_metric']} = {_num(ch['ai_metric_value'])})"]
        for s in ch["steps"]:
            lines.append(f"  {s['from']} → {s['to']}: {_num(s['estimate'])} [{_num(s['ci_low'])}, "
                         f"{_num(s['ci_high'])}] {s['unit']} ({edge_kind(s)}"
                         + (f", {s['n_cells']} cells" if s.get("n_cells") else "") + ")")
        against = "vs holdout" if str(ch.get("impact_method") or "").startswith("causal") else "treatment only"
        lines.append(f"  impact ({against}): {_usd(ch['usd_impact'])} [{_usd(ch['usd_ci_low'])}, "
                     f"{_usd(ch['usd_ci_high'])}]; chain implies {_usd(ch['usd_implied'])} "
                     f"[{_usd(ch['usd_implied_ci_low'])}, {_usd(ch['usd_implied_ci_high'])}]")
        lines.append(f"  {ch['note']}")
    wf = rep["waterfall"]
    lines.append("")
    if wf["steps"]:
        lines.append(f"Quarter over quarter ({wf['previous_quarter']} → {rep['quarter']}): "
                     f"{_usd(wf['start']['usd'])} → {_usd(wf['end']['usd'])}")
        for s in wf["steps"]:
            lines.append(f"  {s['label']:<28} {_usd(s['usd_change'])} (via {s['ai_metric']}: "
                         f"{_usd(s['components'][0]['usd'])}, other: {_usd(s['components'][1]['usd'])})")
    else:
        lines.append(wf["note"])
    lines.append("")
    lines.append("Assumptions: " + "; ".join(
        f"{n} = {a.get('value', a.get('by_feature'))} {a['unit']}" for n, a in rep["assumptions"].items()))
    return "\n".join(lines)


def cli(args) -> int:
    """`python -m pipelines bridge --db PATH [--quarter 2026Q1] [--format json|text]`."""
    if not args.db.exists():
        raise ValueError(f"warehouse {args.db} does not exist; build one with `python -m pipelines demo --db {args.db}`")
    con = warehouse.connect(args.db, read_only=True)
    try:
        rep = report(con, getattr(args, "quarter", None))
    finally:
        con.close()
    if getattr(args, "format", "text") == "json":
        print(json.dumps(rep, indent=1, default=_json_default))
    else:
        print(report_text(rep))
    return 0


def _json_default(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `python -m pipelines bridge`")
