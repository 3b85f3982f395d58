"""Bridge measures by period and slice (Explore), on a hand-made fixture.

Every expected value is worked out by hand below from the rows of the fixture and the
assumptions in config/assumptions.toml (review_minutes_per_correction 3, reviewer 65 USD/h,
agent 48 USD/h, user hour 45 USD/h, manual baseline support_assistant 6 min, code_assistant
12 min). The config values are asserted first so a change there fails loudly here.

Fixture (all UTC): ISO week starting Monday 2026-02-09.
  users   u1 pro/treatment, u2 free/treatment, u3 pro/holdout
  2026-02-10  a1 u1 support_assistant/billing completed, latency 1 s + verification 59 s -> TTA 60 s, $0.010
              a2 u1 support_assistant/billing corrected, interventions edit 30 s + review 90 s, $0.020
              a3 u2 code_assistant/code escalated, intervention escalation 600 s, $0.030
              a4 u2 code_assistant/code completed, 2 s + 118 s -> TTA 120 s, $0.040
              a5 u2 code_assistant/code completed but tier-1 hallucinated (not valid, no TTA), $0.050
  2026-02-11  a6 u1 code_assistant/code completed, never verified (valid, no TTA), review 60 s, $0.005
  tickets  t1 u1 02-10 30 min, t2 u3 02-10 90 min, t3 u2 02-12 15 min
  infra    support_assistant 02-10 $1.00, code_assistant 02-11 $2.00, doc_summarizer 02-11 $0.50
           (a feature with no interaction at all)
Support measures count the tickets of users who can use the AI feature (not the holdout's
t2) unless the slice names experiment groups. Infra is shared out by the slice's share of
each feature's interactions in the period; a feature without interactions charges only
an unfiltered (or feature-only) slice.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines import bridge, bridge_metrics, warehouse
from tests.helpers_source import interaction, run_source, scratch_dir, user, write_source

D10, D11, D12 = "2026-02-10", "2026-02-11", "2026-02-12"
WEEK = dt.date(2026, 2, 9)


def _ticket(tid, uid, ts, minutes):
    return {"ticket_id": tid, "user_id": uid, "created_ts": ts, "resolved_ts": None, "escalated": False,
            "handle_time_min": minutes}


def _itv(vid, iid, kind, seconds, ts):
    return {"intervention_id": vid, "interaction_id": iid, "ts": ts, "kind": kind, "duration_s": seconds}


@pytest.fixture(scope="module")
def db():
    tables = {
        "users": [user("u1", "pro", "treatment"), user("u2", "free", "treatment"), user("u3", "pro", "holdout")],
        "interactions": [
            interaction("a1", f"{D10} 09:00:00", "u1", feature="support_assistant", domain="billing",
                        latency_ms=1000.0, verification_ms=59000.0, cost_usd=0.010),
            interaction("a2", f"{D10} 09:10:00", "u1", feature="support_assistant", domain="billing",
                        outcome="corrected", cost_usd=0.020),
            interaction("a3", f"{D10} 10:00:00", "u2", outcome="escalated", cost_usd=0.030),
            interaction("a4", f"{D10} 11:00:00", "u2", latency_ms=2000.0, verification_ms=118000.0, cost_usd=0.040),
            interaction("a5", f"{D10} 12:00:00", "u2", verification_ms=10000.0, cost_usd=0.050),
            interaction("a6", f"{D11} 08:00:00", "u1", cost_usd=0.005),
        ],
        "adjudications": [{"interaction_id": "a5", "tier": 1, "hallucinated": True, "ts": f"{D10} 13:00:00"}],
        "interventions": [
            _itv("v1", "a2", "edit", 30.0, f"{D10} 09:11:00"),
            _itv("v2", "a2", "review", 90.0, f"{D10} 09:12:00"),
            _itv("v3", "a3", "escalation", 600.0, f"{D10} 10:05:00"),
            _itv("v4", "a6", "review", 60.0, f"{D11} 08:05:00"),
        ],
        "user_activity": [{"user_id": u, "activity_date": d} for u in ("u1", "u2", "u3") for d in (D10, D11)],
        "support_tickets": [_ticket("t1", "u1", f"{D10} 09:30:00", 30.0),
                            _ticket("t2", "u3", f"{D10} 10:00:00", 90.0),
                            _ticket("t3", "u2", f"{D12} 10:00:00", 15.0)],
        "infra_costs": [{"date": D10, "feature": "support_assistant", "cost_usd": 1.0},
                        {"date": D11, "feature": "code_assistant", "cost_usd": 2.0},
                        {"date": D11, "feature": "doc_summarizer", "cost_usd": 0.5}],
    }
    work = scratch_dir("bridge_metrics")
    source = write_source(work / "source", tables)
    path = work / "wh.duckdb"
    run_source(source, path)  # with every gate: the metrics suites accept the new models
    return path


def _table(db, by, **filters):
    con = warehouse.connect(db, read_only=True)
    try:
        df = bridge_metrics.table(con, by, filters or None)
    finally:
        con.close()
    return {r["period_start"]: r for r in df.iter_rows(named=True)}


def test_assumptions_are_the_ones_the_hand_values_use():
    a = bridge.assumptions()
    assert bridge._value(a, "review_minutes_per_correction") == 3.0
    assert bridge._value(a, "reviewer_cost_per_hour_usd") == 65.0
    assert bridge._value(a, "agent_cost_per_hour_usd") == 48.0
    assert bridge._value(a, "user_hour_value_usd") == 45.0
    assert bridge._baseline(a, "support_assistant") == 6.0
    assert bridge._baseline(a, "code_assistant") == 12.0


def test_week_all_interactions(db):
    r = _table(db, "week")[WEEK]
    assert r["interactions"] == 6 and r["ce_n"] == 2 and r["valid"] == 3 and r["tickets"] == 2  # not t2
    assert r["corrections_escalations_per_100"] == pytest.approx(100 * 2 / 6)
    # (30 + 90 + 600) s on a2, a3 (a6's review is not on a corrected/escalated output) + 2 x 3 min
    assert r["human_review_hours"] == pytest.approx(720 / 3600 + 2 * 3 / 60)  # 0.3 h
    assert r["review_cost_usd"] == pytest.approx(0.3 * 65)
    assert r["valid_outputs"] == 3  # a1, a4, a6
    assert r["minutes_saved_per_task"] == pytest.approx(((6 - 1) + (12 - 2)) / 2)  # 7.5
    assert r["user_hours_saved"] == pytest.approx(7.5 * 3 / 60)
    assert r["productivity_value_usd"] == pytest.approx(7.5 * 3 / 60 * 45)
    assert r["ai_spend_usd"] == pytest.approx(0.155 + 1.0 + 2.0 + 0.5)  # unfiltered: all infra
    assert r["support_contacts_per_1k"] == pytest.approx(1000 * 2 / 6)
    assert r["agent_hours"] == pytest.approx((30 + 15) / 60)
    assert r["support_cost_usd"] == pytest.approx(0.75 * 48)


def test_days_including_a_day_with_tickets_only(db):
    t = _table(db, "day")
    assert sorted(t) == [dt.date(2026, 2, 10), dt.date(2026, 2, 11), dt.date(2026, 2, 12)]
    d10, d11, d12 = t[dt.date(2026, 2, 10)], t[dt.date(2026, 2, 11)], t[dt.date(2026, 2, 12)]
    assert d10["corrections_escalations_per_100"] == pytest.approx(40.0)
    assert d10["human_review_hours"] == pytest.approx(0.3)
    assert d10["user_hours_saved"] == pytest.approx(7.5 * 2 / 60)
    assert d10["ai_spend_usd"] == pytest.approx(0.15 + 1.0)
    assert d10["support_contacts_per_1k"] == pytest.approx(1000 * 1 / 5)  # t1 (t2 is the holdout's)
    assert d10["agent_hours"] == pytest.approx(0.5)
    assert d11["human_review_hours"] == 0.0 and d11["minutes_saved_per_task"] is None
    assert d11["user_hours_saved"] is None and d11["valid_outputs"] == 1
    assert d11["ai_spend_usd"] == pytest.approx(0.005 + 2.0 + 0.5)
    assert d11["support_contacts_per_1k"] == 0.0 and d11["agent_hours"] == 0.0
    # tickets but no interaction: the support hours are there, the per-interaction rates are not
    assert d12["interactions"] == 0 and d12["agent_hours"] == pytest.approx(0.25)
    assert d12["support_contacts_per_1k"] is None and d12["corrections_escalations_per_100"] is None
    assert d12["ai_spend_usd"] is None


def test_segment_slice(db):
    r = _table(db, "week", segment=["pro"])[WEEK]  # u1 (a1, a2, a6) and u3 (holdout, no interactions)
    assert r["interactions"] == 3
    assert r["corrections_escalations_per_100"] == pytest.approx(100 / 3)
    assert r["human_review_hours"] == pytest.approx(120 / 3600 + 3 / 60)
    assert r["minutes_saved_per_task"] == pytest.approx(5.0)
    assert r["user_hours_saved"] == pytest.approx(5.0 * 2 / 60)
    # support infra x 2/2 of its interactions (a1, a2); code infra x 1/4 (a6 of a3-a6); no doc share
    assert r["ai_spend_usd"] == pytest.approx(0.035 + 1.0 + 2.0 / 4)
    assert r["support_contacts_per_1k"] == pytest.approx(1000 * 1 / 3)  # t1; u3 is in the holdout
    assert r["agent_hours"] == pytest.approx(0.5)


def test_holdout_slice_has_support_but_no_ai(db):
    r = _table(db, "week", experiment_group=["holdout"])[WEEK]
    assert r["interactions"] == 0 and r["agent_hours"] == pytest.approx(1.5)
    assert r["support_cost_usd"] == pytest.approx(72.0)
    assert r["support_contacts_per_1k"] is None and r["ai_spend_usd"] is None
    # "(none)": users with no experiment group, of whom this fixture has none
    assert _table(db, "week", experiment_group=["(none)"]) == {}
    both = _table(db, "week", experiment_group=["holdout", "(none)"])[WEEK]
    assert both["agent_hours"] == pytest.approx(1.5) and both["interactions"] == 0


def test_feature_slice_leaves_support_out(db):
    r = _table(db, "week", feature=["code_assistant"])[WEEK]  # a3, a4, a5, a6
    assert r["interactions"] == 4
    assert r["corrections_escalations_per_100"] == pytest.approx(25.0)
    assert r["human_review_hours"] == pytest.approx(600 / 3600 + 3 / 60)
    assert r["minutes_saved_per_task"] == pytest.approx(10.0)
    assert r["user_hours_saved"] == pytest.approx(10.0 * 2 / 60)
    assert r["ai_spend_usd"] == pytest.approx(0.125 + 2.0)  # only the selected feature's infra, all of it
    assert r["support_contacts_per_1k"] is None and r["agent_hours"] is None and r["tickets"] is None


def test_domain_slice_shares_infra_and_leaves_support_out(db):
    r = _table(db, "week", domain=["billing"])[WEEK]  # a1, a2 (support_assistant)
    assert r["interactions"] == 2
    assert r["ai_spend_usd"] == pytest.approx(0.03 + 1.0 * 2 / 2 + 2.0 * 0 / 4)
    assert r["agent_hours"] is None
    d11 = _table(db, "day", segment=["pro"])[dt.date(2026, 2, 11)]  # a6 is the day's only code interaction
    assert d11["ai_spend_usd"] == pytest.approx(0.005 + 2.0)


def test_quarter_grain_and_meta(db):
    t = _table(db, "quarter")
    assert list(t) == [dt.date(2026, 1, 1)]
    assert t[dt.date(2026, 1, 1)]["review_cost_usd"] == pytest.approx(19.5)
    m = bridge_metrics.meta("support_cost_usd")
    assert m["kind"] == "pnl" and m["unit"] == "USD"
    note = bridge_metrics.assumptions_note(["review_cost_usd"])
    assert "reviewer_cost_per_hour_usd = 65 USD per hour" in note and "review_minutes_per_correction = 3" in note
    with pytest.raises(ValueError):
        _table(db, "all")


# ------------------------------------------------------------------ Explore shows them
def test_explore_page_charts_bridge_measures_with_hand_values(db, app_env):
    from tests.test_app_pages import no_failure, open_page, texts

    app_env(db)
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "week"})
    at.pills(key="metrics").set_value(["TCR", "Review $", "Agent h", "Tickets/1k"]).run()
    no_failure(at)
    df = at.dataframe[0].value
    week = df[df["period_start"].astype(str) == str(WEEK)].iloc[0]  # AppTest hands pandas frames
    assert week["review_cost_usd"] == pytest.approx(19.5)
    assert week["agent_hours"] == pytest.approx(0.75)
    assert week["support_contacts_per_1k"] == pytest.approx(1000 * 2 / 6)
    assert week["tcr"] == pytest.approx(4 / 6)  # a1, a4, a5, a6 completed of 6
    assert "tcr_status" in df.columns and "review_cost_usd_status" not in df.columns
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]  # one figure, a panel per metric
    assert len(specs) == 1
    assert specs[0]["layout"]["title"]["text"] == ("TCR, Review $, Agent h, Tickets/1k by ISO week (Mon)"
                                                   f"<br><sup>all interactions; {D10} → {D11}</sup>")
    panels = [a["text"] for a in specs[0]["layout"]["annotations"]]
    assert "Review cost (USD)" in panels and "Support agent hours" in panels  # "(hours)" says nothing new
    assert "reviewer_cost_per_hour_usd = 65 USD per hour" in texts(at)

    at.pills(key="feature").set_value(["code_assistant"]).run()  # tickets have no feature
    no_failure(at)
    assert "Support tickets carry no feature" in texts(at)
    df = at.dataframe[0].value
    assert df["agent_hours"].isna().all()
    week = df[df["period_start"].astype(str) == str(WEEK)].iloc[0]
    assert week["review_cost_usd"] == pytest.approx((600 / 3600 + 3 / 60) * 65)


def test_gate_warnings_on_an_input_reach_the_measures_that_read_it():
    assert bridge_metrics.touched("staging", "stg_support_tickets") == list(bridge_metrics.SUPPORT)
    assert bridge_metrics.touched("raw", "src_infra_costs") == ["ai_spend_usd"]
    assert bridge_metrics.touched("raw", "src_interventions") == ["human_review_hours", "review_cost_usd"]
    assert bridge_metrics.touched("metrics", "tickets_daily") == list(bridge_metrics.MEASURES)
    assert bridge_metrics.touched("bridge", "bridge_nodes") == []
    assert bridge_metrics.support_applies({"segment": ["pro"]}) and not bridge_metrics.support_applies(
        {"domain": ["code"]})


@pytest.fixture(scope="module")
def ghost_db():
    """u1 pro/treatment, u2 free with no experiment group, and a ticket of a user the users
    table does not know (support tickets carry no foreign-key check)."""
    tables = {
        "users": [user("u1", "pro", "treatment"), user("u2", "free", None)],
        "interactions": [interaction("a1", f"{D10} 09:00:00", "u1", cost_usd=0.010)],
        "adjudications": [], "interventions": [],
        "user_activity": [{"user_id": "u1", "activity_date": D10}],
        "support_tickets": [_ticket("t1", "u1", f"{D10} 09:30:00", 30.0),
                            _ticket("t2", "u2", f"{D11} 10:00:00", 45.0),
                            _ticket("t3", "ghost", f"{D12} 10:00:00", 60.0)],
        "infra_costs": [],
    }
    work = scratch_dir("bridge_metrics_ghost")
    source = write_source(work / "source", tables)
    path = work / "wh.duckdb"
    run_source(source, path, expect=None)
    return path


def test_none_slice_counts_known_users_without_a_value_not_unknown_users(ghost_db):
    every = _table(ghost_db, "week")[WEEK]  # every non-holdout ticket, the unknown user's too
    assert every["agent_hours"] == pytest.approx((30 + 45 + 60) / 60)
    none = _table(ghost_db, "week", experiment_group=["(none)"])[WEEK]  # u2's ticket only
    assert none["agent_hours"] == pytest.approx(45 / 60) and none["interactions"] == 0
    assert _table(ghost_db, "week", segment=["(none)"]) == {}  # both known users have a segment
    both = _table(ghost_db, "week", experiment_group=["treatment", "(none)"])[WEEK]
    assert both["agent_hours"] == pytest.approx((30 + 45) / 60)


def test_a_warehouse_built_before_user_known_says_rebuild(ghost_db, tmp_path):
    import shutil

    import duckdb

    from pipelines import data_access as da

    old = tmp_path / "old.duckdb"
    shutil.copy(ghost_db, old)
    con = duckdb.connect(str(old))
    con.execute("alter table tickets_daily drop column user_known")
    con.close()
    with pytest.raises(da.WarehouseUnavailable, match="no user_known column.*rebuild it"):
        da.explore("week", None, metrics=["agent_hours"], db=old)
