"""KPI bridge chains as config (SPEC §4): the defaults load, and every kind of bad chain
is rejected when the config loads with a message naming the chain and the fix."""
from __future__ import annotations

import copy

import pytest

from pipelines import bridge, config
from pipelines.config import ConfigError


@pytest.fixture
def cfg():
    return copy.deepcopy(config.load("bridge"))


@pytest.fixture
def assm():
    return copy.deepcopy(config.load("assumptions"))


def chain(cfg, cid):
    return next(c for c in cfg["chains"] if c["id"] == cid)


def rejected(cfg, assm, *needles) -> str:
    with pytest.raises(ConfigError) as err:
        bridge.load_chains(cfg, assm)
    msg = str(err.value)
    for n in needles:
        assert n in msg, msg
    assert "fix:" in msg, msg
    return msg


def test_the_five_default_chains_load():
    chains = bridge.load_chains()
    assert [c["ai_metric"] for c in chains] == ["tcr", "hr", "retention_delta_pts", "tta_p50_s", "cpvo_usd"]
    pnl = {c["id"]: (c["nodes"][-1]["name"], c["nodes"][-1]["kind"]) for c in chains}
    assert pnl == {"tcr_support_cost": ("support_cost_usd", "pnl"), "hr_review_cost": ("review_cost_usd", "pnl"),
                   "rd_retained_revenue": ("retained_revenue_usd", "pnl"),
                   "tta_productivity": ("productivity_value_usd", "pnl"), "cpvo_spend": ("ai_spend_usd", "pnl")}
    for c in chains:
        assert 1 <= len(c["edges"]) <= 3
        assert all(e["method"] in ("causal", "observational") for e in c["edges"])
        assert [n["name"] for n in c["nodes"]] == [c["edges"][0]["from"]] + [e["to"] for e in c["edges"]]
    # SPEC §4 paths
    tcr = chains[0]
    assert [n["name"] for n in tcr["nodes"]] == ["tcr", "support_contacts_per_1k", "agent_hours", "support_cost_usd"]
    assert "agent_cost_per_hour_usd" in tcr["assumptions"]


def test_versions_are_present():
    assert bridge.assumptions()["version"]
    assert bridge.bridge_settings()["version"]


def test_chain_longer_than_three_steps_is_rejected(cfg, assm):
    cfg["nodes"]["support_cost_usd_2"] = dict(cfg["nodes"]["agent_hours"], kind="ops")
    c = chain(cfg, "tcr_support_cost")
    c["edges"][2]["to"] = "support_cost_usd_2"
    c["edges"][2].update(estimator="conversion", conversion="agent_hours_per_contact")
    c["edges"].append({"from": "support_cost_usd_2", "to": "support_cost_usd", "estimator": "assumption",
                       "assumptions": ["agent_cost_per_hour_usd"]})
    rejected(cfg, assm, "chain `tcr_support_cost`", "does not reach a P&L node within 3 steps")


def test_chain_that_never_reaches_pnl_is_rejected(cfg, assm):
    c = chain(cfg, "hr_review_cost")
    c["edges"].pop()  # stops at human_review_hours
    rejected(cfg, assm, "chain `hr_review_cost`", "does not reach a P&L node", "human_review_hours")


def test_cycle_is_rejected(cfg, assm):
    c = chain(cfg, "tcr_support_cost")
    c["edges"][2] = {"from": "agent_hours", "to": "support_contacts_per_1k", "estimator": "dose_response",
                     "cells": "week_segment"}
    msg = rejected(cfg, assm, "chain `tcr_support_cost`", "cycle")
    assert "support_contacts_per_1k → agent_hours → support_contacts_per_1k" in msg


def test_unknown_node_is_rejected(cfg, assm):
    chain(cfg, "tcr_support_cost")["edges"][2]["to"] = "support_costs_usd"
    rejected(cfg, assm, "chain `tcr_support_cost`", "unknown node `support_costs_usd`", "[nodes.support_costs_usd]")


def test_unknown_ai_metric_node_is_rejected(cfg, assm):
    chain(cfg, "rd_retained_revenue")["ai_metric"] = "retention_delta"
    chain(cfg, "rd_retained_revenue")["edges"][0]["from"] = "retention_delta"
    rejected(cfg, assm, "chain `rd_retained_revenue`", "unknown node `retention_delta`")


def test_missing_assumption_in_an_edge_is_rejected(cfg, assm):
    chain(cfg, "tcr_support_cost")["edges"][2]["assumptions"] = ["agent_cost_per_hr_usd"]
    rejected(cfg, assm, "chain `tcr_support_cost`", "missing assumption `agent_cost_per_hr_usd`",
             "config/assumptions.toml")


def test_assumption_missing_from_the_assumptions_file_is_rejected(cfg, assm):
    del assm["assumptions"]["review_minutes_per_correction"]
    rejected(cfg, assm, "chain `hr_review_cost`", "missing assumption `review_minutes_per_correction`")


def test_unit_mismatch_along_an_assumption_edge_is_rejected(cfg, assm):
    assm["assumptions"]["user_hour_value_usd"]["unit"] = "USD per minute"
    msg = rejected(cfg, assm, "chain `tta_productivity`", "unit mismatch along edge user_hours_saved → productivity_value_usd")
    assert "USD per minute" in msg


def test_unit_mismatch_with_two_assumptions_is_rejected(cfg, assm):
    assm["assumptions"]["retention_credit_months"]["unit"] = "days"
    rejected(cfg, assm, "chain `rd_retained_revenue`", "unit mismatch along edge incremental_retained_users")


def test_unit_mismatch_at_a_node_is_rejected(cfg, assm):
    cfg["nodes"]["agent_hours"]["unit"] = "minutes"
    rejected(cfg, assm, "chain `tcr_support_cost`", "unit mismatch at node `agent_hours`", 'unit = "hours"')


def test_unit_mismatch_along_a_conversion_edge_is_rejected(cfg, assm):
    chain(cfg, "tcr_support_cost")["edges"][1]["conversion"] = "tasks_per_hour_saved"
    rejected(cfg, assm, "chain `tcr_support_cost`", "unit mismatch along edge support_contacts_per_1k → agent_hours")


def test_unit_mismatch_along_a_holdout_ratio_edge_is_rejected(cfg, assm):
    e = chain(cfg, "tcr_support_cost")["edges"][1]
    e.clear()
    e.update({"from": "support_contacts_per_1k", "to": "agent_hours", "estimator": "holdout_ratio",
              "numerator": "agent_hours_per_user", "denominator": "tickets_per_user", "scale": "one"})
    rejected(cfg, assm, "chain `tcr_support_cost`", "unit mismatch along edge support_contacts_per_1k → agent_hours")
    # the right scale makes it a valid causal edge
    e["scale"] = "treatment_interactions_per_1k"
    chains = bridge.load_chains(cfg, assm)
    assert chains[0]["edges"][1]["method"] == "causal"


def test_branching_and_stray_edges_are_rejected(cfg, assm):
    c = chain(cfg, "tcr_support_cost")
    c["edges"].append({"from": "tcr", "to": "agent_hours", "estimator": "dose_response", "cells": "week_segment"})
    rejected(cfg, assm, "chain `tcr_support_cost`", "outgoing edges")


def test_dose_response_needs_cells_both_nodes_have(cfg, assm):
    chain(cfg, "hr_review_cost")["edges"][0]["cells"] = "week_segment"
    rejected(cfg, assm, "chain `hr_review_cost`", "no per-cell values at week_segment")


def test_unknown_estimator_and_duplicate_id_are_rejected(cfg, assm):
    chain(cfg, "cpvo_spend")["edges"][0]["estimator"] = "magic"
    rejected(cfg, assm, "chain `cpvo_spend`", "estimator 'magic'")
    cfg2 = copy.deepcopy(config.load("bridge"))
    cfg2["chains"].append(copy.deepcopy(cfg2["chains"][0]))
    rejected(cfg2, assm, "chain `tcr_support_cost`", "used twice")


def test_unit_algebra():
    assert bridge.unit_dims("USD per hour") == bridge.unit_dims("usd per hours")
    assert bridge._product_dims(["USD per user-month", "months"]) == bridge.unit_dims("USD per user")
    assert bridge.unit_dims("contacts per 1,000 AI interactions") != bridge.unit_dims("contacts per 100 queries")
    assert bridge.edge_unit("hours", "contacts per 1,000 AI interactions") == \
        "hours per (contacts per 1,000 AI interactions)"
    assert bridge.edge_unit("USD", "hours") == "USD per hour"


def test_a_bad_consistency_tolerance_is_refused():
    cfg = copy.deepcopy(config.load("bridge"))
    for bad in (None, -0.1, 1.5, "5%"):
        cfg["consistency"] = {} if bad is None else {"tolerance_share": bad}
        with pytest.raises(bridge.ConfigError, match=r"\[consistency\] tolerance_share"):
            bridge.bridge_settings(cfg)
