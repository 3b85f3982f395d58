"""The audit's weekly behavior counters (sql/audit/audit_weekly_counters.sql) on a tiny
hand-made warehouse: every expected count is worked out by hand below."""
from __future__ import annotations

import datetime as dt

import duckdb

from pipelines import warehouse

MON = dt.date(2026, 3, 2)  # a Monday: week 1 = Mar 2-8, week 2 = Mar 9-15


def _ts(day: int, hh: int, mm: int, ss: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hh, mm, ss)


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create table int_interactions (interaction_id varchar, user_id varchar, feature varchar, "
                "ts timestamp, activity_date date, is_completed boolean)")
    rows = [
        # u1, feature a, week 1: a1 and a2 at the same ts (a tie: one of the two counts),
        # a3 exactly 300 s after them (a2 or a1 -> a3: the other one counts), a4 301 s
        # after a3 (a3 not requeried), a4 alone afterwards
        ("a1", "u1", "a", _ts(3, 10, 0)), ("a2", "u1", "a", _ts(3, 10, 0)),
        ("a3", "u1", "a", _ts(3, 10, 5)), ("a4", "u1", "a", _ts(3, 10, 10, 1)),
        # u1, feature b, 60 s after a4: another feature, so a4 is not requeried by it
        ("b1", "u1", "b", _ts(3, 10, 11, 1)),
        # u2: c1 on Sunday 23:59 of week 1, c2 Monday 00:01 (week 2): c1 requeried, in week 1
        ("c1", "u2", "a", _ts(8, 23, 59)), ("c2", "u2", "a", _ts(9, 0, 1)),
        # u3, week 2: d1 on the last selected day, d2 the day after ($date_to + 1: the
        # look-ahead): d1 requeried; d2 itself is outside the weeks counted
        ("d1", "u3", "a", _ts(15, 23, 58)), ("d2", "u3", "a", _ts(16, 0, 2)),
    ]
    completed = {"a1", "a3", "b1", "c1", "d1"}
    con.executemany("insert into int_interactions values (?, ?, ?, ?, ?, ?)",
                    [(i, u, f, t, t.date(), i in completed) for i, u, f, t in rows])
    con.execute("create table stg_interventions (interaction_id varchar, kind varchar, ts timestamp)")
    con.executemany("insert into stg_interventions values (?, ?, ?)", [
        ("a1", "escalation", _ts(3, 11, 0)),   # after a completed output: counts
        ("a1", "escalation", _ts(3, 12, 0)),   # a second one: a1 still counts once
        ("a3", "escalation", _ts(3, 9, 0)),    # before the interaction: does not count
        ("b1", "escalation", None),            # no ts: can only follow the output, counts
        ("a2", "escalation", _ts(3, 11, 0)),   # a2 is not completed: does not count
        ("c1", "edit", _ts(8, 23, 59, 30)),    # not an escalation
    ])
    con.execute("create table stg_support_tickets (user_id varchar, created_ts timestamp)")
    con.executemany("insert into stg_support_tickets values (?, ?)", [
        ("u1", _ts(4, 9, 0)),    # week 1, u1 used the AI in week 1
        ("u3", _ts(5, 9, 0)),    # week 1, u3 used the AI in week 2 only
        ("u9", _ts(10, 9, 0)),   # week 2, never used the AI
        ("u3", _ts(16, 9, 0)),   # after $date_to: not counted
    ])
    return con


def test_weekly_counters_by_hand():
    con = _warehouse()
    params = {"date_from": MON, "date_to": dt.date(2026, 3, 15), "requery_seconds": 300}
    rows = warehouse.run_query(con, "audit/audit_weekly_counters.sql", params).fetchall()
    cols = ["week_start", "interactions", "completed", "requeried", "completed_escalated",
            "ai_users", "tickets", "ai_user_tickets"]
    got = {r[0]: dict(zip(cols, r)) for r in rows}
    assert sorted(got) == [MON, dt.date(2026, 3, 9)]
    # week 1: a1 a2 a3 a4 b1 c1 = 6 interactions; completed a1 a3 b1 c1 = 4
    # requeried: one of a1/a2 (tie), the other (-> a3 at +300 s), c1 (-> c2 at +120 s)
    #   = 3; a3 -> a4 is 301 s, a4 -> b1 is another feature, b1 is alone
    # completed and escalated after the output: a1, b1 = 2
    # AI users: u1, u2; tickets 2 (u1, u3), of AI users that week: u1 = 1
    assert got[MON] == dict(week_start=MON, interactions=6, completed=4, requeried=3,
                            completed_escalated=2, ai_users=2, tickets=2, ai_user_tickets=1)
    # week 2: c2 d1 = 2 interactions (d2 is after $date_to); completed d1 = 1;
    # requeried: d1 (-> d2 at +240 s, the look-ahead day) = 1; c2 alone afterwards
    # AI users u2, u3; tickets: u9 = 1, not an AI user
    wk2 = dt.date(2026, 3, 9)
    assert got[wk2] == dict(week_start=wk2, interactions=2, completed=1, requeried=1,
                            completed_escalated=0, ai_users=2, tickets=1, ai_user_tickets=0)
