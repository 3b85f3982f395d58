"""Bad input (SPEC §2): whole-table problems stop the run with exit 2 and a message
naming the table, the column and the fix (never a traceback); row-level problems go
to the `quarantine` table with a reason; no row is lost without a reason; a run that
quarantines more than the configured share (5%) of a table fails its gate (exit 1).
"""
from __future__ import annotations

import json
import re
import sys
from concurrent.futures import Future
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_source import (SCHEMAS, background, cli, interaction, scratch_dir,  # noqa: E402
                            user, write_source, write_table)

REASONS = {"null_id", "duplicate_id", "null_required", "unparseable", "out_of_range",
           "unknown_enum", "orphan_key", "future_ts"}
OUTCOMES = ["completed", "completed", "completed", "corrected", "fallback", "escalated",
            "abandoned"]
# words that a message telling the user how to fix the input is expected to contain
FIX_WORDS = re.compile(r"\b(add|provide|rename|convert|cast|write|export|re-?export|"
                       r"regenerate|check|fix|expected|expects|should|must|ensure|"
                       r"replace|include|supply|create|store|save)\b", re.I)


def base_tables(n_users: int = 20, n_inter: int = 200) -> dict:
    users = [user(f"u{i:02d}", ["free", "pro", "enterprise"][i % 3],
                  "holdout" if i % 5 == 0 else "treatment") for i in range(n_users)]
    inter, adj, itv, act = [], [], [], []
    for i in range(n_inter):
        day = 1 + i % 20
        iid = f"i{i:04d}"
        inter.append(interaction(
            iid, f"2026-03-{day:02d} {8 + i % 10:02d}:{i % 60:02d}:00", f"u{i % n_users:02d}",
            feature=["code_assistant", "support_assistant"][i % 2],
            domain=["code", "billing", "search"][i % 3],
            outcome=OUTCOMES[i % len(OUTCOMES)],
            latency_ms=500.0 + i, verification_ms=None if i % 3 == 0 else 1000.0 + i,
            confidence=(i % 10) / 10))
        if i % 2 == 0:
            adj.append({"interaction_id": iid, "tier": 1, "hallucinated": i % 8 == 0,
                        "ts": f"2026-03-{day:02d} 20:00:00"})
        if i % 4 == 0:
            itv.append({"intervention_id": f"v{i:04d}", "interaction_id": iid,
                        "ts": f"2026-03-{day:02d} 21:00:00", "kind": "edit",
                        "duration_s": 10.0})
    for u in range(n_users):
        for d in range(1, 25, 2):
            act.append({"user_id": f"u{u:02d}", "activity_date": f"2026-03-{d:02d}"})
    tickets = [{"ticket_id": f"t{i}", "user_id": f"u{i:02d}",
                "created_ts": "2026-03-05 10:00:00", "resolved_ts": "2026-03-05 12:00:00",
                "escalated": False, "handle_time_min": 15.0} for i in range(5)]
    infra = [{"date": f"2026-03-{d:02d}", "feature": "code_assistant", "cost_usd": 0.5}
             for d in range(1, 21)]
    return {"users": users, "interactions": inter, "adjudications": adj,
            "interventions": itv, "user_activity": act, "support_tickets": tickets,
            "infra_costs": infra}


def _out(p) -> str:
    return (p.stdout or "") + "\n" + (p.stderr or "")


def _assert_bad_input(p, table: str, column: str | None) -> None:
    out = _out(p)
    assert p.returncode == 2, f"exit {p.returncode} (expected 2)\n{out}"
    assert "Traceback" not in out, out
    assert table in out, f"message does not name table {table!r}:\n{out}"
    if column is not None:
        assert column in out, f"message does not name column {column!r}:\n{out}"
    assert FIX_WORDS.search(out), f"message does not say how to fix it:\n{out}"


# --------------------------------------------------------------------- whole-table
# Each source is written and its run started in the background at import time.

def _start_run(src: Path) -> Future:
    return background("run", "--source", src, "--db", src.parent / "wh.duckdb")


def _src_missing_table() -> Path:
    return write_source(scratch_dir("missing_table") / "src", base_tables(),
                        skip={"adjudications"})


def _src_missing_column() -> Path:
    t = base_tables()
    src = write_source(scratch_dir("missing_column") / "src", t)
    schema = [(c, ty) for c, ty in SCHEMAS["interactions"] if c != "outcome"]
    write_table(src, "interactions", t["interactions"], schema=schema)
    return src


def _src_wrong_type() -> Path:
    # Parquet latency_ms holding words instead of numbers
    t = base_tables()
    src = write_source(scratch_dir("wrong_type") / "src", t)
    schema = [(c, pa.string() if c == "latency_ms" else ty) for c, ty in SCHEMAS["interactions"]]
    rows = [dict(r, latency_ms=["fast", "slow", "medium"][i % 3])
            for i, r in enumerate(t["interactions"])]
    write_table(src, "interactions", rows, schema=schema)
    return src


def _src_unreadable() -> Path:
    src = write_source(scratch_dir("unreadable") / "src", base_tables())
    (src / "interactions.parquet").write_bytes(b"this is not parquet \x00\x01\x02" * 50)
    return src


WHOLE_TABLE = {
    # case: (future, table the message must name, column it must name)
    "missing_table": (_start_run(_src_missing_table()), "adjudications", None),
    "missing_column": (_start_run(_src_missing_column()), "interactions", "outcome"),
    "wrong_type": (_start_run(_src_wrong_type()), "interactions", "latency_ms"),
    "unreadable": (_start_run(_src_unreadable()), "interactions", None),
}


@pytest.mark.parametrize("case", list(WHOLE_TABLE))
def test_whole_table_problem(case):
    fut, table, column = WHOLE_TABLE[case]
    _assert_bad_input(fut.result(), table, column)


def _src_empty_tables() -> Path:
    # a valid source whose adjudications, interventions and user_activity have no rows
    # (SPEC §2 sets no minimum row count; e.g. a product without human review yet) and
    # without the optional infra_costs table
    t = base_tables()
    t = {"users": t["users"], "interactions": t["interactions"],
         "support_tickets": t["support_tickets"],
         "adjudications": [], "interventions": [], "user_activity": []}
    return write_source(scratch_dir("empty_tables") / "src", t)


_EMPTY_RUN = _start_run(_src_empty_tables())


def test_empty_tables_accepted():
    p = _EMPTY_RUN.result()
    assert p.returncode == 0, f"exit {p.returncode} (expected 0)\n{_out(p)}"


def test_missing_source_dir(tmp_path):
    p = cli("run", "--source", tmp_path / "nope", "--db", tmp_path / "wh.duckdb")
    out = _out(p)
    assert p.returncode == 2, out
    assert "Traceback" not in out, out


def test_l6_bad_arguments(tmp_path):
    p = cli("l6", "--db", tmp_path / "missing.duckdb", "--by", "month", "--format", "json")
    assert p.returncode == 2, _out(p)
    assert "Traceback" not in _out(p), _out(p)
    p = cli("l6", "--db", tmp_path / "missing.duckdb", "--by", "fortnight")
    assert p.returncode == 2, _out(p)
    assert "Traceback" not in _out(p), _out(p)


def test_demo_bad_arguments(tmp_path):
    """Arguments the demo cannot use, caught before the generation or by it in its own
    process: exit code 2, words naming the argument, no traceback, no warehouse left."""
    db = tmp_path / "w.duckdb"
    p = cli("demo", "--db", db, "--users", "0")
    assert p.returncode == 2 and "--users 0" in p.stderr and "Traceback" not in _out(p), _out(p)
    p = cli("demo", "--db", db, "--seed", "-1", "--users", "10", "--days", "3")  # numpy rejects the seed
    assert p.returncode == 2, _out(p)
    assert "the demo generation failed: ValueError" in p.stderr and "Traceback" not in _out(p), _out(p)
    assert not db.exists()


# ----------------------------------------------------------------------- row-level
# each bad row carries a unique session_id marker so it can be found in row_json
BAD_INTERACTIONS = [
    # marker,           reason,          column,          overrides
    ("bad-null-id",     "null_id",       "interaction_id", {"interaction_id": None}),
    ("bad-neg-latency", "out_of_range",  "latency_ms",     {"latency_ms": -5.0}),
    ("bad-confidence",  "out_of_range",  "confidence",     {"confidence": 1.5}),
    ("bad-outcome",     "unknown_enum",  "outcome",        {"outcome": "succeeded"}),
    ("bad-orphan-user", "orphan_key",    "user_id",        {"user_id": "ghost"}),
    ("bad-future-ts",   "future_ts",     "ts",             {"ts": "2099-01-01 00:00:00"}),
]


def _rowlevel_source():
    tmp = scratch_dir("rowlevel")
    t = base_tables()
    inter = t["interactions"]
    for k, (marker, _, _, over) in enumerate(BAD_INTERACTIONS):
        row = interaction(f"b{k:02d}", "2026-03-10 10:00:00", "u01", session_id=marker)
        row.update(over)
        inter.append(row)
    # same id, different content (two rows with id "dupx")
    inter.append(interaction("dupx", "2026-03-11 10:00:00", "u02", session_id="bad-dup-a",
                             latency_ms=100.0))
    inter.append(interaction("dupx", "2026-03-11 10:00:00", "u02", session_id="bad-dup-b",
                             latency_ms=900.0))
    # exact duplicate rows: two good rows written twice
    inter.append(dict(inter[10]))
    inter.append(dict(inter[11]))
    # other tables: an orphan adjudication, an intervention with negative duration,
    # 3 exact duplicate activity rows
    t["adjudications"].append({"interaction_id": "nope", "tier": 1, "hallucinated": False,
                               "ts": "2026-03-10 20:00:00"})
    t["interventions"].append({"intervention_id": "vneg", "interaction_id": "i0001",
                               "ts": "2026-03-10 21:00:00", "kind": "edit",
                               "duration_s": -3.0})
    t["user_activity"] += [dict(r) for r in t["user_activity"][:3]]
    written = {k: len(v) for k, v in t.items()}
    src = write_source(tmp / "src", t)
    return src, tmp / "wh.duckdb", written


_RL_SRC, _RL_DB, _RL_WRITTEN = _rowlevel_source()
_RL_RUN = background("run", "--source", _RL_SRC, "--db", _RL_DB)


@pytest.fixture(scope="module")
def rowlevel():
    return {"proc": _RL_RUN.result(), "db": _RL_DB, "written": _RL_WRITTEN}


def _q(db, sql, *params):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_rowlevel_run_succeeds(rowlevel):
    p = rowlevel["proc"]
    assert p.returncode == 0, _out(p)
    assert "Traceback" not in _out(p)


def _quarantine(db):
    return _q(db, "select table_name, reason, column_name, row_json from quarantine")


def test_quarantine_reasons(rowlevel):
    assert rowlevel["proc"].returncode == 0, _out(rowlevel["proc"])
    rows = _quarantine(rowlevel["db"])
    assert all(r[1] in REASONS for r in rows), {r[1] for r in rows} - REASONS
    by_marker: dict[str, list] = {}
    for table, reason, column, row_json in rows:
        assert row_json, "row_json must hold the quarantined row"
        obj = json.loads(row_json) if isinstance(row_json, str) else row_json
        marker = obj.get("session_id") if isinstance(obj, dict) else None
        if table == "interactions" and marker:
            by_marker.setdefault(marker, []).append((reason, column))
    problems = []
    for marker, reason, column, _ in BAD_INTERACTIONS:
        got = by_marker.get(marker)
        if not got or (reason, column) not in got:
            problems.append(f"{marker}: expected ({reason}, {column}), got {got}")
    dups = by_marker.get("bad-dup-a", []) + by_marker.get("bad-dup-b", [])
    if not any(r == "duplicate_id" for r, _ in dups):
        problems.append(f"dupx: expected duplicate_id, got {dups}")
    assert not problems, "\n".join(problems)
    # the other tables
    other = {(t, r, c) for t, r, c, _ in rows if t != "interactions"}
    assert ("adjudications", "orphan_key", "interaction_id") in other, other
    assert ("interventions", "out_of_range", "duration_s") in other, other


def test_quarantined_rows_not_staged(rowlevel):
    db = rowlevel["db"]
    assert rowlevel["proc"].returncode == 0, _out(rowlevel["proc"])
    staged = _q(db, "select session_id from stg_interactions where session_id like 'bad-%'")
    # at most one of the two 'dupx' rows may stay (if the implementation keeps one)
    left = sorted(s for (s,) in staged)
    assert all(s in ("bad-dup-a", "bad-dup-b") for s in left) and len(left) <= 1, left
    assert _q(db, "select count(*) from stg_interactions where interaction_id = 'dupx'")[0][0] <= 1
    assert _q(db, "select count(*) from stg_adjudications where interaction_id = 'nope'")[0][0] == 0
    assert _q(db, "select count(*) from stg_interventions where intervention_id = 'vneg'")[0][0] == 0
    # exact duplicates are removed (one copy kept), not quarantined
    assert _q(db, "select count(*) from stg_interactions where interaction_id in ('i0010', 'i0011')")[0][0] == 2
    q = _q(db, "select count(*) from quarantine where table_name = 'interactions' "
               "and (row_json like '%i0010%' or row_json like '%i0011%')")[0][0]
    assert q == 0
    n_act = _q(db, "select count(*) from stg_user_activity")[0][0]
    n_act_distinct = _q(db, "select count(*) from (select distinct user_id, activity_date "
                            "from stg_user_activity)")[0][0]
    assert n_act == n_act_distinct


def test_ingest_summary_conservation(rowlevel):
    db, written = rowlevel["db"], rowlevel["written"]
    assert rowlevel["proc"].returncode == 0, _out(rowlevel["proc"])
    run_id = _q(db, "select run_id from meta_ingest_summary order by run_id desc limit 1")[0][0]
    rows = _q(db, "select table_name, rows_read, rows_deduplicated, rows_quarantined, rows_kept "
                  "from meta_ingest_summary where run_id = ?", run_id)
    summary = {r[0]: r[1:] for r in rows}
    for table in ["users", "interactions", "adjudications", "interventions",
                  "user_activity", "support_tickets"]:
        assert table in summary, f"no ingest summary for {table}: {sorted(summary)}"
    problems = []
    for table, (read, dedup, quar, kept) in summary.items():
        if kept + quar + dedup != read:
            problems.append(f"{table}: kept {kept} + quarantined {quar} + dedup {dedup} != read {read}")
        if table in written and read != written[table]:
            problems.append(f"{table}: rows_read {read} != rows written {written[table]}")
        n_q = _q(db, "select count(*) from quarantine where table_name = ?", table)[0][0]
        if n_q != quar:
            problems.append(f"{table}: quarantine table has {n_q} rows, summary says {quar}")
        stg = _q(db, f"select count(*) from stg_{table}")[0][0]
        if stg != kept:
            problems.append(f"{table}: stg_{table} has {stg} rows, summary says kept {kept}")
    assert not problems, "\n".join(problems)
    # interactions: 2 exact duplicates removed; user_activity: 3
    assert summary["interactions"][1] == 2, summary["interactions"]
    assert summary["user_activity"][1] == 3, summary["user_activity"]
    # 6 single-problem rows + 1 or 2 'dupx' rows
    assert summary["interactions"][2] in (7, 8), summary["interactions"]
    assert summary["adjudications"][2] == 1 and summary["interventions"][2] == 1


def _gate_source() -> Path:
    t = base_tables()
    # 20 of 200 interactions (10% > 5%) with a negative latency
    for r in t["interactions"][:20]:
        r["latency_ms"] = -1.0
    # their adjudications / interventions would become orphans: drop them
    bad = {r["interaction_id"] for r in t["interactions"][:20]}
    t["adjudications"] = [a for a in t["adjudications"] if a["interaction_id"] not in bad]
    t["interventions"] = [v for v in t["interventions"] if v["interaction_id"] not in bad]
    return write_source(scratch_dir("gate") / "src", t)


_GATE_RUN = _start_run(_gate_source())


def test_quarantine_share_gate_fails():
    p = _GATE_RUN.result()
    out = _out(p)
    assert p.returncode == 1, f"exit {p.returncode} (expected 1: gate failed)\n{out}"
    assert "Traceback" not in out, out
    assert "interactions" in out, f"the failure should name the table:\n{out}"
