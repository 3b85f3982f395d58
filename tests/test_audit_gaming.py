"""A planted gaming pattern (SPEC §6 anti-gaming): in the audit window TCR goes up while
re-queries within 5 minutes (same user, same feature) and escalations after a completed
outcome go up too. The audit flags both TCR pairs and recommends re-defining; a control
source with the same TCR rise but no re-queries (and escalations logged before the output,
which do not count) is not flagged."""
from __future__ import annotations

import datetime as dt

import pytest

from helpers_source import interaction, user, write_source
from pipelines import audit, runner, warehouse

AS_OF = dt.date(2026, 3, 2)                  # a Monday
WINDOW_START = dt.date(2026, 1, 5)           # audit window 2026-01-05 .. 2026-03-01
REFERENCE_START = dt.date(2025, 11, 10)      # reference 2025-11-10 .. 2026-01-04
USERS = [f"u{i:02d}" for i in range(20)]


def _source(root, gaming: bool):
    interactions, interventions, tickets, adjudications = [], [], [], []
    n = 0
    for week in range(16):
        monday = REFERENCE_START + dt.timedelta(weeks=week)
        audit_window = monday >= WINDOW_START
        for u_i, uid in enumerate(USERS):
            for d_i, day in enumerate((0, 2, 4)):
                n += 1
                ts = dt.datetime.combine(monday + dt.timedelta(days=day), dt.time(9 + u_i % 8, 0))
                k = (week * 60 + u_i * 3 + d_i) % 20
                # TCR 60% in the reference window, 85% in the audit window
                completed = k < (17 if audit_window else 12)
                iid = f"i{n:05d}"
                interactions.append(interaction(iid, ts.isoformat(sep=" "), uid, outcome="completed" if completed else "corrected",
                                                 confidence=0.8, input_tokens=300 + 10 * k))
                adjudications.append({"interaction_id": iid, "tier": 1, "hallucinated": k == 0,
                                      "ts": (ts + dt.timedelta(hours=1)).isoformat(sep=" ")})
                if gaming and audit_window and k % 4 == 0:
                    # the user asks again 2 minutes later: the first "completed" was not
                    n += 1
                    interactions.append(interaction(f"i{n:05d}", (ts + dt.timedelta(minutes=2)).isoformat(sep=" "),
                                                    uid, outcome="completed", confidence=0.8, input_tokens=300))
                if gaming and audit_window and completed and k % 5 == 1:
                    interventions.append({"intervention_id": f"v{n:05d}", "interaction_id": iid,
                                          "ts": (ts + dt.timedelta(minutes=30)).isoformat(sep=" "),
                                          "kind": "escalation", "duration_s": 300.0})
                if not gaming and audit_window and completed and k % 5 == 1:
                    # an escalation logged BEFORE the output (e.g. a pre-existing case): not an
                    # escalation after a completed outcome, so never a gaming signal
                    interventions.append({"intervention_id": f"v{n:05d}", "interaction_id": iid,
                                          "ts": (ts - dt.timedelta(minutes=30)).isoformat(sep=" "),
                                          "kind": "escalation", "duration_s": 300.0})
                if k == 3:
                    tickets.append({"ticket_id": f"t{n:05d}", "user_id": uid,
                                    "created_ts": (ts + dt.timedelta(hours=2)).isoformat(sep=" "),
                                    "resolved_ts": (ts + dt.timedelta(hours=5)).isoformat(sep=" "),
                                    "escalated": False, "handle_time_min": 10.0})
    users = [user(u, signup_date="2025-01-01") for u in USERS]
    return write_source(root, {"users": users, "interactions": interactions, "adjudications": adjudications,
                               "interventions": interventions, "support_tickets": tickets})


def _audit(tmp_path_factory, gaming: bool) -> dict:
    root = tmp_path_factory.mktemp("gaming" if gaming else "control")
    src = _source(root / "source", gaming)
    db = root / "w.duckdb"
    result = runner.run(src, db, command="run", gates=False)
    assert result.status == "success", result.message
    con = warehouse.connect(db, read_only=True)
    try:
        return audit.run_audit(con, AS_OF)
    finally:
        con.close()


@pytest.fixture(scope="module")
def gamed(tmp_path_factory):
    return _audit(tmp_path_factory, gaming=True)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    return _audit(tmp_path_factory, gaming=False)


def _pair(f, primary, counter):
    return next(g for g in f["gaming"] if g["primary"] == primary and g["counter"] == counter)


def test_windows_of_the_fixture(gamed):
    assert gamed["window"]["start"] == WINDOW_START.isoformat()
    assert gamed["reference"]["start"] == REFERENCE_START.isoformat()


def test_tcr_up_with_requeries_up_is_flagged(gamed):
    p = _pair(gamed, "tcr", "requery_rate")
    assert p["primary_audit"] > p["primary_reference"] and p["primary_improved"]
    assert p["counter_reference"] == 0 and p["counter_audit"] > 0.1
    assert p["counter_worsened_beyond_noise"] and p["counter_diff_ci_low"] > 0
    assert p["flagged"] and p["flag"] and "gaming" in p["note"]


def test_tcr_up_with_escalations_after_completion_is_flagged(gamed):
    p = _pair(gamed, "tcr", "completed_escalation_rate")
    assert p["counter_reference"] == 0 and p["counter_audit"] > 0.05
    assert p["flagged"]


def test_gaming_drives_the_verdict(gamed):
    assert gamed["flagged"]["gaming"]
    assert gamed["verdict"] == "re-define"
    assert "gaming" in gamed["scorecard"]["reason"]
    assert any(f.startswith("gaming: tcr") for f in gamed["flags"])


def test_requery_count_definition(gamed):
    # each planted follow-up re-queries exactly one interaction (the one 2 minutes before it)
    audit_weeks = gamed["weekly_counters"]["audit"]
    planted = sum(1 for week in range(8, 16) for u in range(20) for d in range(3)
                  if ((week * 60 + u * 3 + d) % 20) % 4 == 0)
    assert sum(w["requeried"] for w in audit_weeks) == planted
    assert sum(w["requeried"] for w in gamed["weekly_counters"]["reference"]) == 0


def test_same_tcr_rise_without_counter_movement_is_not_flagged(control):
    p = _pair(control, "tcr", "requery_rate")
    assert p["primary_improved"] and not p["flagged"]
    assert p["note"] == "no sign of gaming: tcr improved; requery_rate did not worsen beyond noise"
    assert not any(g["flagged"] for g in control["gaming"])
    item = next(i for i in control["scorecard"]["items"] if i["metric"] == "tcr")
    assert item["change"] == "improved" and item["points"] == 1.0


def test_escalations_before_the_output_do_not_count(control):
    p = _pair(control, "tcr", "completed_escalation_rate")
    assert p["counter_reference"] == 0 and p["counter_audit"] == 0
    assert not p["flagged"]


def test_a_counter_worsening_without_the_primary_improving_is_no_gaming_and_says_so(demo_db):
    # the demo: TCR fell (the planted context-window cut), so CPVO's counter-metric (TCR)
    # worsened beyond noise while CPVO did not improve; "✔ ok" beside "tcr worsened beyond
    # noise" read as a contradiction
    con = warehouse.connect(demo_db, read_only=True)
    try:
        f = audit.run_audit(con)
    finally:
        con.close()
    p = _pair(f, "cpvo_usd", "tcr")
    assert not p["primary_improved"] and p["counter_worsened_beyond_noise"] and not p["flagged"]
    assert p["note"] == ("no sign of gaming: cpvo_usd did not improve, so tcr worsening beyond noise is not its "
                         "price (worth a look on its own)")
