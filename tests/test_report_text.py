"""The QBR's words about the bridge: what each chain's dollars are measured against and
what they rest on, on a hand-made bridge report (values worked out by hand below)."""
from __future__ import annotations

from pipelines import report

CAUSAL = "causal: treatment vs holdout (intention-to-treat), scaled to the treatment population"
ALONE = "measured on the treatment population; the holdout (never offered the AI) has none of this P&L line"


def _chain(name, usd, lo, hi, method, assumptions):
    return {"name": name, "ai_metric": name.split()[0].lower(), "usd_impact": usd, "usd_ci_low": lo,
            "usd_ci_high": hi, "impact_method": method, "assumptions": assumptions, "consistent": True,
            "gap_material": False, "note": ""}


BRIDGE = {"available": True, "assumptions_version": "test.1", "waterfall": {"steps": []}, "chains": [
    _chain("TCR → support cost", -1_000.0, -3_000.0, 1_000.0, CAUSAL,
           {"agent_cost_per_hour_usd": {"value": 48.0, "unit": "USD per hour"}}),
    _chain("RΔ → retained revenue", 20_000.0, 15_000.0, 25_000.0, CAUSAL, {}),
    _chain("TTA → productivity value", 50_000.0, 49_990.0, 50_010.0, ALONE,
           {"user_hour_value_usd": {"value": 45.0, "unit": "USD per hour"},
            "manual_baseline_minutes_per_task": {"value": None, "unit": "minutes per task",
                                                 "by_feature": {"code": 12.0, "docs": 15.0}}}),
    _chain("CPVO → AI spend", -9_000.0, -9_100.0, -8_900.0, ALONE, {}),
]}


def test_chains_frame_says_what_each_impact_is_measured_against():
    df = report.chains_frame(BRIDGE)
    assert df["measured against"].to_list() == [
        "the holdout (causal)", "the holdout (causal)",
        "nothing: treatment only (the holdout has none of this line)",
        "nothing: treatment only (the holdout has none of this line)"]
    assert df["rests on assumptions"].to_list() == [
        "agent cost per hour usd = 48 USD per hour", "none",
        "manual baseline minutes per task = code 12, docs 15 minutes per task; user hour value usd = 45 USD per hour",
        "none"]
    assert df["impact (USD)"].to_list() == [-1_000.0, 20_000.0, 50_000.0, -9_000.0]
    # + is good for the P&L; an interval that spans zero is no measurable effect
    assert df["P&L reading"].to_list() == ["no measurable effect", "gain", "gain", "cost"]


def test_summary_splits_the_total_by_what_it_is_measured_against():
    steady = [{"metric": m, "value": v, "status": "green", "previous": v, "previous_status": "green", "note": ""}
              for m, v in (("retention_delta_pts", 9.0), ("hitl_per_100", 1.0))]
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True, "metrics": steady}
    [line] = [b for b in report.summary_bullets(card, BRIDGE) if b.startswith("The KPI bridge")]
    # total 60,000 = 19,000 against the holdout (−1,000 + 20,000) + 41,000 treatment only (50,000 − 9,000)
    assert "values 2026Q3's AI impact at +$60.0k across 4 chains" in line
    assert "+$19.0k measured against the holdout (TCR → support cost, RΔ → retained revenue)" in line
    assert "+$41.0k on the treatment population alone" in line
    assert "TTA → productivity value +$50.0k, CPVO → AI spend −$9,000" in line
    assert "the largest is TTA → productivity value at +$50.0k" in line
    assert "rests on manual baseline minutes per task = code 12, docs 15" in line
    assert "The intervals cover sampling only, not the assumptions." in line
