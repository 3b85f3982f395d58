"""The KPI bridge (SPEC §4) on the demo warehouse: tables, report/CLI contract, the causal
comparison against scipy and statsmodels, intervals, the waterfall, the what-if, the gate."""
from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pipelines import bridge, config, warehouse

REPO = Path(__file__).resolve().parents[1]
CAUSAL = ["tickets_per_user", "agent_hours_per_user", "support_cost_per_user_usd", "retained_7d_share"]


@pytest.fixture(scope="module")
def con(demo_db):
    c = warehouse.connect(demo_db, read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def rep(con):
    return bridge.report(con)


@pytest.fixture
def writable_copy(demo_db, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, db)
    c = warehouse.connect(db)
    yield c
    c.close()


def df(con, sql, params=None) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())


# ------------------------------------------------------------------ tables
def test_bridge_tables_exist_with_one_row_per_grain(con):
    grains = {"bridge_causal": "quarter, measure", "bridge_nodes": "quarter, chain_id, position",
              "bridge_edges": "quarter, chain_id, step", "bridge_chains": "quarter, chain_id",
              "bridge_waterfall": "quarter, chain_id", "bridge_user_quarter": "quarter, user_id",
              "bridge_cells_user": "week_start, slice", "bridge_cells_interaction": "week_start, feature, domain",
              "bridge_quarter_base": "quarter, feature", "bridge_quarters": "quarter"}
    for table, grain in grains.items():
        assert warehouse.table_exists(con, table), table
        dup = con.execute(f"select count(*) from (select {grain} from {table} group by all having count(*) > 1)"
                          ).fetchall()[0][0]
        assert dup == 0, table
    assert bridge.quarters(con) == ["2026Q2", "2026Q3"]
    n = con.execute("select count(*) from bridge_chains").fetchall()[0][0]
    assert n == 2 * len(bridge.load_chains())


def test_bridge_gate_passed_in_the_run(con):
    rows = con.execute("""select suite, expectation, severity, success from meta_gate_results
                          where stage = 'bridge'""").fetchall()
    suites = {r[0] for r in rows}
    assert {"bridge__bridge_causal", "bridge__bridge_edges", "bridge__bridge_nodes", "bridge__bridge_chains",
            "bridge__bridge_waterfall"} <= suites
    failed = [r for r in rows if r[2] == "critical" and not r[3]]
    assert not failed, failed


# ------------------------------------------------------------------ report / CLI contract
def test_report_has_the_cli_json_shape(rep):
    assert rep["quarter"] == "2026Q3"  # the latest complete quarter
    assert rep["assumptions_version"] == config.load("assumptions")["version"]
    assert set(CAUSAL) <= set(rep["causal"])
    for name, c in rep["causal"].items():
        for k in ("treatment", "holdout", "diff", "ci_low", "ci_high", "n_treatment", "n_holdout", "method"):
            assert k in c, (name, k)
        assert c["n_treatment"] > 0 and c["n_holdout"] > 0
        assert "welch" in c["method"] or "bootstrap" in c["method"]
    assert [c["ai_metric"] for c in rep["chains"]] == ["tcr", "hr", "retention_delta_pts", "tta_p50_s", "cpvo_usd"]
    for c in rep["chains"]:
        for k in ("name", "ai_metric", "steps", "usd_impact", "usd_ci_low", "usd_ci_high", "consistent", "note"):
            assert k in c, k
        assert 1 <= len(c["steps"]) <= 3
        for s in c["steps"]:
            assert set(s) >= {"from", "to", "method", "estimate", "ci_low", "ci_high", "unit"}
            assert s["method"] in ("causal", "observational")
            assert s["unit"]
        assert isinstance(c["consistent"], bool)
        assert c["note"]
        if s["method"] == "observational" and s["estimator"] == "dose_response":
            assert s["n_cells"] >= 6
    json.dumps(rep)  # plain JSON


def test_cli_bridge_json_and_text(demo_db, rep):
    env = {**os.environ, "KPI_BRIDGE_DEBUG": ""}
    out = subprocess.run([sys.executable, "-m", "pipelines", "bridge", "--db", str(demo_db), "--format", "json",
                          "--quarter", "2026Q3"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quarter"] == "2026Q3"
    assert data["causal"]["tickets_per_user"]["diff"] == pytest.approx(rep["causal"]["tickets_per_user"]["diff"])
    assert [c["name"] for c in data["chains"]] == [c["name"] for c in rep["chains"]]
    txt = subprocess.run([sys.executable, "-m", "pipelines", "bridge", "--db", str(demo_db)], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=env)
    assert txt.returncode == 0, txt.stderr
    assert "Treatment vs holdout" in txt.stdout and "TCR → support cost" in txt.stdout
    # each edge's kind in the words the diagram uses: the agent cost per hour is an assumption
    assert "agent_hours → support_cost_usd: 48 [48, 48] USD per hour (assumption)" in txt.stdout
    bad = subprocess.run([sys.executable, "-m", "pipelines", "bridge", "--db", str(demo_db), "--quarter", "2019Q1"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2
    assert "unknown quarter 2019Q1" in bad.stderr and "Traceback" not in bad.stderr


def test_previous_quarter_report_and_bad_quarter(con):
    r = bridge.report(con, "2026q2")
    assert r["quarter"] == "2026Q2"
    assert r["waterfall"]["steps"] == [] and "No previous quarter" in r["waterfall"]["note"]
    with pytest.raises(ValueError, match="not a quarter"):
        bridge.report(con, "Q3-2026")


# ------------------------------------------------------------------ causal
def _per_user(con, quarter):
    return df(con, "select * from bridge_user_quarter where quarter = ?", [quarter])


@pytest.mark.parametrize("quarter", ["2026Q2", "2026Q3"])
def test_itt_agrees_with_scipy_and_statsmodels(con, quarter):
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    rate = bridge.assumptions()["items"]["agent_cost_per_hour_usd"]["value"]
    u = _per_user(con, quarter)
    got = {r["measure"]: r for r in df(con, "select * from bridge_causal where quarter = ?", [quarter]).to_dicts()}
    for measure, col, subset, scale in [("tickets_per_user", "tickets", None, 1.0),
                                        ("agent_hours_per_user", "agent_hours", None, 1.0),
                                        ("support_cost_per_user_usd", "agent_hours", None, rate),
                                        ("retained_7d_share", "retained_7d", "retention_eligible", 1.0)]:
        d = u.filter(pl.col(subset)) if subset else u
        x = d.filter(pl.col("experiment_group") == "treatment")[col].cast(pl.Float64).to_numpy() * scale
        y = d.filter(pl.col("experiment_group") == "holdout")[col].cast(pl.Float64).to_numpy() * scale
        res = stats.ttest_ind(x, y, equal_var=False)
        ci = res.confidence_interval(0.95)
        g = got[measure]
        assert g["n_treatment"] == len(x) and g["n_holdout"] == len(y)
        assert g["treatment"] == pytest.approx(x.mean(), rel=1e-12)
        assert g["holdout"] == pytest.approx(y.mean(), rel=1e-12)
        assert g["diff"] == pytest.approx(x.mean() - y.mean(), rel=1e-9, abs=1e-12)
        assert g["ci_low"] == pytest.approx(ci.low, rel=1e-9)
        assert g["ci_high"] == pytest.approx(ci.high, rel=1e-9)
        assert g["p_value"] == pytest.approx(res.pvalue, rel=1e-6)
        lo, hi = CompareMeans(DescrStatsW(x), DescrStatsW(y)).tconfint_diff(alpha=0.05, usevar="unequal")
        assert (g["ci_low"], g["ci_high"]) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


def test_per_user_outcomes_follow_the_definitions(con):
    """bridge_user_quarter recomputed in polars from the staged tables (SPEC §4 definitions)."""
    users = df(con, "select user_id, experiment_group, signup_date from stg_users")
    tickets = df(con, "select user_id, created_ts, handle_time_min from stg_support_tickets")
    days = df(con, "select user_id, activity_date, next_active_date from int_user_active_days")
    last_active = days["activity_date"].max()
    for quarter, qs, qe in [("2026Q2", dt.date(2026, 4, 1), dt.date(2026, 6, 30)),
                            ("2026Q3", dt.date(2026, 7, 1), dt.date(2026, 9, 30))]:
        pop = users.filter(pl.col("experiment_group").is_in(["treatment", "holdout"]) & (pl.col("signup_date") <= qe))
        t = (tickets.filter(pl.col("created_ts").dt.date().is_between(qs, qe))
             .group_by("user_id").agg(pl.len().alias("n"), (pl.col("handle_time_min").sum() / 60).alias("h")))
        a = (days.filter(pl.col("activity_date").is_between(qs, qe)).sort("activity_date")
             .group_by("user_id").agg(pl.col("activity_date").first().alias("anchor"),
                                      pl.col("next_active_date").first().alias("nxt")))
        exp = (pop.join(t, on="user_id", how="left").join(a, on="user_id", how="left")
               .with_columns(pl.col("n").fill_null(0), pl.col("h").fill_null(0.0),
                             ((pl.col("anchor") + pl.duration(days=7)) <= last_active).fill_null(False).alias("elig")))
        exp = exp.with_columns(pl.when(pl.col("elig"))
                               .then((pl.col("nxt") <= pl.col("anchor") + pl.duration(days=7)).fill_null(False))
                               .alias("ret"))
        got = _per_user(con, quarter).select("user_id", "tickets", "agent_hours", "retention_eligible", "retained_7d")
        both = exp.join(got, on="user_id", how="full", coalesce=True)
        assert both.height == exp.height == got.height
        assert (both["n"] == both["tickets"]).all()
        assert np.allclose(both["h"].to_numpy(), both["agent_hours"].to_numpy())
        assert (both["elig"] == both["retention_eligible"]).all()
        assert both.filter(pl.col("elig")).select((pl.col("ret") == pl.col("retained_7d")).all()).item()
        assert both.filter(~pl.col("elig"))["retained_7d"].null_count() == both.filter(~pl.col("elig")).height


def test_cuped_beside_the_plain_estimate():
    rng = np.random.default_rng(5)
    n_t, n_h = 4000, 600
    x_t, x_h = rng.poisson(2.0, n_t).astype(float), rng.poisson(2.0, n_h).astype(float)
    y_t = 0.8 * x_t + rng.normal(0, 1, n_t) - 0.3
    y_h = 0.8 * x_h + rng.normal(0, 1, n_h)
    plain = bridge.welch(y_t, y_h)
    c = bridge.cuped(y_t, y_h, x_t, x_h)
    assert c["available"]
    assert c["theta"] == pytest.approx(0.8, abs=0.05)
    assert c["variance_reduction"] > 0.4
    assert (c["ci_high"] - c["ci_low"]) < (plain["ci_high"] - plain["ci_low"])
    assert c["ci_low"] <= -0.3 <= c["ci_high"]


def test_cuped_with_a_configured_pre_period(writable_copy):
    cfg = copy.deepcopy(config.load("bridge"))
    cfg["causal"]["experiment_start"] = "2026-07-01"  # mechanics only: Q2 behavior as the "pre-period"
    settings = bridge.bridge_settings(cfg)
    bridge.run_models_causal(writable_copy, settings)
    est = bridge.causal_estimates(writable_copy, settings)
    r = est["2026Q3"]["tickets_per_user"]
    assert r["cuped"]["available"] and r["cuped"]["variance_reduction"] > 0
    assert r["cuped"]["ci_low"] <= r["cuped"]["diff"] <= r["cuped"]["ci_high"]
    plain = bridge.causal_estimates(writable_copy, bridge.bridge_settings())  # same per-user outcomes
    assert plain["2026Q3"]["tickets_per_user"]["diff"] == pytest.approx(r["diff"])


def test_bootstrap_interval_is_close_to_welch():
    rng = np.random.default_rng(1)
    x, y = rng.poisson(0.4, 3000).astype(float), rng.poisson(0.5, 400).astype(float)
    w, b = bridge.welch(x, y), bridge.bootstrap(x, y, draws=1000)
    assert b["diff"] == w["diff"]
    assert b["ci_low"] == pytest.approx(w["ci_low"], abs=0.02)
    assert b["ci_high"] == pytest.approx(w["ci_high"], abs=0.02)


# ------------------------------------------------------------------ observational edges
def test_wls_slope_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = 90
    groups = np.repeat(np.arange(9), 10)
    x = rng.uniform(0.6, 0.9, n) + 0.02 * groups
    w = rng.integers(50, 2000, n).astype(float)
    y = 30 - 20 * x + 0.5 * groups + rng.normal(0, 2, n) / np.sqrt(w / 500)
    got = bridge.wls_slope(x, y, w)
    sm_fit = sm.WLS(y, sm.add_constant(x), weights=w).fit(cov_type="HC1")
    assert got["slope"] == pytest.approx(sm_fit.params[1], rel=1e-9)
    assert got["se"] == pytest.approx(sm_fit.bse[1], rel=1e-9)
    # fixed effects by demeaning = dummies (Frisch–Waugh–Lovell), same HC1 error
    fe = bridge.wls_slope(x, y, w, groups)
    dummies = np.eye(9)[groups]
    sm_fe = sm.WLS(y, np.column_stack([x, dummies]), weights=w).fit(cov_type="HC1")
    assert fe["slope"] == pytest.approx(sm_fe.params[0], rel=1e-9)
    assert fe["se"] == pytest.approx(sm_fe.bse[0], rel=1e-9)


def test_dose_response_edges_say_what_they_rest_on(rep):
    for c in rep["chains"]:
        for s in c["steps"]:
            if s["estimator"] == "dose_response":
                assert s["method"] == "observational"
                assert s["n_cells"] >= 6 and "cells" in s["basis"]


# ------------------------------------------------------------------ intervals and dollars
def test_intervals_contain_estimates(con):
    for table, est, lo, hi in [("bridge_causal", "diff", "ci_low", "ci_high"),
                               ("bridge_edges", "estimate", "ci_low", "ci_high"),
                               ("bridge_chains", "usd_impact", "usd_ci_low", "usd_ci_high"),
                               ("bridge_chains", "usd_implied", "usd_implied_ci_low", "usd_implied_ci_high"),
                               ("bridge_waterfall", "usd_change", "usd_ci_low", "usd_ci_high")]:
        bad = con.execute(f"select count(*) from {table} where {est} is not null and "
                          f"not ({lo} <= {est} + 1e-9 * greatest(1, abs({est})) and "
                          f"{est} - 1e-9 * greatest(1, abs({est})) <= {hi})").fetchall()[0][0]
        assert bad == 0, (table, est)


def test_consistency_follows_the_intervals_and_is_said_in_words(con):
    tolerance = config.load("bridge")["consistency"]["tolerance_share"]
    rows = df(con, "select * from bridge_chains").to_dicts()
    for r in rows:
        if r["usd_impact"] is None or r["usd_implied"] is None:
            continue
        overlap = r["usd_implied_ci_low"] <= r["usd_ci_high"] and r["usd_ci_low"] <= r["usd_implied_ci_high"]
        material = abs(r["usd_implied"] - r["usd_impact"]) > tolerance * max(abs(r["usd_impact"]),
                                                                             abs(r["usd_implied"]))
        assert r["consistent"] == overlap
        assert r["gap_material"] == material
        assert r["note"].startswith("Inconsistent" if not overlap else ("Consistent", "The chain is"))
        if not overlap:
            assert "do not overlap" in r["note"]
            assert ("immaterial" in r["note"]) == (not material)


def test_materiality_bar():
    # intervals that miss each other by $100 on $252,900: immaterial; by 20%: material
    assert not bridge.gap_is_material(252_900, 252_800, 0.05)
    assert bridge.gap_is_material(100_000, 80_000, 0.05)
    assert not bridge.gap_is_material(100_000, 80_000, 0.25)
    assert bridge.gap_is_material(-100, 100, 0.05)


def test_holdout_dollars_are_the_scaled_causal_difference(con, rep):
    c = next(c for c in rep["chains"] if c["id"] == "tcr_support_cost")
    cost = rep["causal"]["support_cost_per_user_usd"]
    # P&L impact: a lower support cost in treatment is a saving (positive)
    assert c["usd_impact"] == pytest.approx(-cost["diff"] * cost["n_treatment"], rel=1e-9)
    assert c["usd_ci_low"] == pytest.approx(-cost["ci_high"] * cost["n_treatment"], rel=1e-9)
    r = next(c for c in rep["chains"] if c["id"] == "rd_retained_revenue")
    ret = rep["causal"]["retained_7d_share"]
    per_user = 1.0
    for a in r["assumptions"].values():
        per_user *= a["value"]
    assert r["usd_impact"] == pytest.approx(ret["diff"] * ret["n_treatment"] * per_user, rel=1e-9)


def test_every_dollar_figure_names_its_assumptions(rep):
    assert rep["assumptions"] and rep["assumptions_version"]
    for c in rep["chains"]:
        assert c["assumptions_version"] == rep["assumptions_version"]
        for s in c["steps"]:
            for a in s["assumptions"]:
                assert a in c["assumptions"]
        if c["id"] != "cpvo_spend":  # spend is measured in USD: no assumption needed
            assert c["assumptions"], c["id"]
        for name, a in c["assumptions"].items():
            assert a["unit"] and (a.get("value") is not None or a.get("by_feature"))


def test_waterfall_adds_up_exactly(con, rep):
    wf = rep["waterfall"]
    assert wf["previous_quarter"] == "2026Q2"
    parts = [s["usd_change"] for s in wf["steps"]]
    assert len(parts) == len(rep["chains"])
    assert wf["start"]["usd"] + sum(parts) == pytest.approx(wf["end"]["usd"], abs=1e-6)
    assert sum(parts) == pytest.approx(wf["total_change"], abs=1e-6)
    prev = bridge.report(con, "2026Q2")
    assert wf["start"]["usd"] == pytest.approx(sum(round(c["usd_impact"], 2) for c in prev["chains"]), abs=1e-6)
    assert wf["end"]["usd"] == pytest.approx(sum(round(c["usd_impact"], 2) for c in rep["chains"]), abs=1e-6)
    for s in wf["steps"]:
        assert sum(p["usd"] for p in s["components"]) == pytest.approx(s["usd_change"], abs=1e-6)
        assert s["usd_current"] - s["usd_previous"] == pytest.approx(s["usd_change"], abs=1e-6)


# ------------------------------------------------------------------ what-if
def test_what_if_at_the_current_value_changes_nothing(con, rep):
    for c in rep["chains"]:
        res = bridge.what_if(con, rep["quarter"], c["id"], c["ai_metric_value"])
        assert res["current_value"] == c["ai_metric_value"]
        assert res["usd_change"] == 0 and res["usd_ci_low"] == 0 and res["usd_ci_high"] == 0
        for n in res["nodes"]:
            assert n["change"] == 0 and n["ci_low"] == 0 and n["ci_high"] == 0
            assert n["new"] == n["current"]


def test_what_if_moves_dollars_through_the_chain(con, rep):
    c = next(c for c in rep["chains"] if c["id"] == "tcr_support_cost")
    res = bridge.what_if(con, rep["quarter"], "TCR → support cost", c["ai_metric_value"] + 0.05)
    assert [n["node"] for n in res["nodes"]] == ["tcr", "support_contacts_per_1k", "agent_hours", "support_cost_usd"]
    slopes = [s["estimate"] for s in c["steps"]]
    assert res["nodes"][1]["change"] == pytest.approx(0.05 * slopes[0], rel=1e-9)
    assert res["nodes"][3]["change"] == pytest.approx(0.05 * math.prod(slopes), rel=1e-9)
    assert res["usd_change"] == pytest.approx(-res["nodes"][3]["change"], rel=1e-12)  # a cost line
    assert res["usd_change"] == pytest.approx(0.05 * c["usd_per_unit"], rel=1e-9)
    assert res["usd_ci_low"] <= res["usd_change"] <= res["usd_ci_high"]
    assert res["assumptions_version"] == rep["assumptions_version"]
    twice = bridge.what_if(con, rep["quarter"], "tcr_support_cost", c["ai_metric_value"] + 0.10)
    assert twice["usd_change"] == pytest.approx(2 * res["usd_change"], rel=1e-9)
    with pytest.raises(ValueError, match="unknown chain"):
        bridge.what_if(con, rep["quarter"], "nope", 1.0)


# ------------------------------------------------------------------ other estimators, edge cases
def test_causal_holdout_ratio_edge(writable_copy, monkeypatch):
    cfg = copy.deepcopy(config.load("bridge"))
    e = next(c for c in cfg["chains"] if c["id"] == "tcr_support_cost")["edges"][1]
    e.clear()
    e.update({"from": "support_contacts_per_1k", "to": "agent_hours", "estimator": "holdout_ratio",
              "numerator": "agent_hours_per_user", "denominator": "tickets_per_user",
              "scale": "treatment_interactions_per_1k"})
    chains = bridge.load_chains(cfg)
    monkeypatch.setattr(bridge, "load_chains", lambda *a, **k: chains)
    bridge.build(writable_copy, "test")
    edge = df(writable_copy, "select * from bridge_edges where quarter = '2026Q3' and chain_id = 'tcr_support_cost' "
                             "and step = 2").to_dicts()[0]
    causal = {r["measure"]: r for r in df(writable_copy, "select * from bridge_causal where quarter = '2026Q3'").to_dicts()}
    i_t = writable_copy.execute("select sum(interactions) from bridge_quarter_base where quarter = '2026Q3'"
                                ).fetchall()[0][0]
    assert edge["method"] == "causal"
    ratio = causal["agent_hours_per_user"]["diff"] / causal["tickets_per_user"]["diff"]
    assert edge["estimate"] == pytest.approx(ratio * i_t / 1000, rel=1e-9)
    assert edge["ci_low"] <= edge["estimate"] <= edge["ci_high"]


def test_empty_warehouse_has_empty_bridge_tables(empty_db):
    c = warehouse.connect(empty_db, read_only=True)
    try:
        assert bridge.quarters(c) == []
        for t in ("bridge_causal", "bridge_edges", "bridge_chains", "bridge_waterfall", "bridge_nodes"):
            assert warehouse.table_exists(c, t)
        with pytest.raises(ValueError, match="no KPI bridge results"):
            bridge.report(c)
    finally:
        c.close()


def test_tiny_source_without_a_holdout_does_not_break_the_bridge(tmp_path):
    """No holdout and a handful of interactions: the run succeeds and the bridge says what it cannot estimate."""
    from helpers_source import interaction, user, write_source

    from pipelines import runner

    users = [user(f"u{i}", experiment_group="treatment" if i % 2 else None) for i in range(6)]
    inter = [interaction(f"i{i}", f"2026-01-{1 + i % 20:02d} 10:00:00", f"u{i % 6}",
                         outcome="completed" if i % 3 else "corrected") for i in range(40)]
    src = write_source(tmp_path / "src", {"users": users, "interactions": inter})
    db = tmp_path / "w.duckdb"
    result = runner.run(src, db, gates=False, as_of=dt.datetime(2026, 3, 1))
    assert result.status == "success", result.message
    c = warehouse.connect(db, read_only=True)
    try:
        assert bridge.quarters(c) == ["2026Q1"]
        r = bridge.report(c)
        assert r["causal"]["tickets_per_user"]["n_holdout"] == 0
        assert r["causal"]["tickets_per_user"]["diff"] is None
        tcr = next(ch for ch in r["chains"] if ch["id"] == "tcr_support_cost")
        assert tcr["usd_impact"] is None and tcr["consistent"] is None and tcr["note"]
        json.dumps(r)
        res = bridge.what_if(c, "2026Q1", "cpvo_spend", 0.01)
        assert res["nodes"][0]["change"] is not None
    finally:
        c.close()


def test_chain_notes_name_the_metric_and_its_value_as_an_exec_reads_them(rep):
    import re

    # "from hr = 0.02973" and "hr → corrections_escalations_per_100" were column names and raw floats
    for c in rep["chains"]:
        assert not re.search(r"\b(tcr|hr|retention_delta_pts|tta_p50_s|cpvo_usd) = ", c["note"]), c["note"]
        assert not re.search(r"\d\.\d{5,}", c["note"]), c["note"]
    assert bridge._value_text(0.02973, "share") == "2.97%"
    assert bridge._value_text(9.0816, "points") == "+9.08 pts"
    assert bridge._value_text(8.3491, "seconds") == "8.35 s"
    assert bridge._value_text(0.0039284, "USD per valid output") == "$0.0039"
