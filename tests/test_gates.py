"""Gates (pipelines/gates.py) with the suites in expectations/*.json.

Every suite passes on a small consistent warehouse built here with DuckDB SQL, and
fails for the right reason (which expectation, its severity, its unexpected count)
when one row is broken. The GX context is built once per process (gx_duckdb caches it).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import EXPECTATIONS_DIR, gates

RUN = "run-test"
AS_OF = dt.datetime(2026, 3, 10, 12, 0, 0)

STAGING_TABLES = ["users", "interactions", "adjudications", "interventions", "user_activity",
                  "support_tickets", "infra_costs"]
RAW_TABLES = STAGING_TABLES[:-1]

BUILD_SQL = """
create table meta_runs (run_id varchar, as_of timestamp, status varchar, started_at timestamp);
insert into meta_runs values ('run-test', timestamp '2026-03-10 12:00:00', 'running', timestamp '2026-03-10 12:00:00');

create table stg_users as
select * from (values
    ('u1', date '2025-12-01', 'free', 'treatment'),
    ('u2', date '2025-12-02', 'pro', 'holdout'),
    ('u3', date '2025-12-03', 'enterprise', null),
    ('u4', date '2025-12-04', 'pro', 'treatment')
) t(user_id, signup_date, segment, experiment_group);

create table stg_interactions as
select 'i' || i as interaction_id,
       timestamp '2026-03-07 09:00:00' + to_hours(i * 6) as ts,
       'u' || (1 + i % 4) as user_id,
       's' || (i // 3) as session_id,
       ['code_assistant', 'support_assistant'][1 + i % 2] as feature,
       ['code', 'billing', 'search'][1 + i % 3] as domain,
       ['m1', 'm2'][1 + i % 2] as model_version,
       cast(500 + i as double) as latency_ms,
       case when i % 3 = 0 then null else cast(1000 + i as double) end as verification_ms,
       cast(100 + i as bigint) as input_tokens,
       cast(50 + i as bigint) as output_tokens,
       cast(0.001 * (1 + i % 3) as double) as cost_usd,
       case when i % 5 = 0 then null else cast((i % 10) / 10 as double) end as confidence,
       ['completed', 'completed', 'corrected', 'fallback', 'escalated', 'abandoned'][1 + i % 6] as outcome
from range(12) r(i);

create table stg_adjudications as
select interaction_id, cast(tier as integer) as tier, hallucinated, ts + interval 1 hour as ts
from (select interaction_id, ts, 1 as tier, row_number() over (order by interaction_id) % 4 = 0 as hallucinated
      from stg_interactions
      union all
      select interaction_id, ts, 2, false from stg_interactions where interaction_id in ('i1', 'i2'));

create table stg_interventions as
select 'v' || interaction_id as intervention_id, interaction_id, ts + interval 2 hour as ts,
       'edit' as kind, cast(30 as double) as duration_s
from stg_interactions where interaction_id in ('i0', 'i3', 'i6');

create table stg_user_activity as
select distinct user_id, cast(ts as date) as activity_date from stg_interactions;

create table stg_support_tickets as
select * from (values
    ('t1', 'u1', timestamp '2026-03-08 10:00:00', timestamp '2026-03-08 11:00:00', false, 12.0),
    ('t2', 'u2', timestamp '2026-03-08 12:00:00', cast(null as timestamp), true, 30.0)
) t(ticket_id, user_id, created_ts, resolved_ts, escalated, handle_time_min);
alter table stg_support_tickets alter handle_time_min type double;

create table stg_infra_costs as
select * from (values (date '2026-03-07', 'code_assistant', 1.5), (date '2026-03-08', 'code_assistant', 1.5))
t(date, feature, cost_usd);
alter table stg_infra_costs alter cost_usd type double;

create table meta_ingest_summary (run_id varchar, table_name varchar, source varchar, rows_read bigint,
                                  rows_deduplicated bigint, rows_quarantined bigint, rows_kept bigint);
insert into meta_ingest_summary values
    ('run-test', 'users', null, 100, 0, 2, 98),
    ('run-test', 'interactions', null, 100, 0, 4, 96),
    ('run-old', 'interactions', null, 100, 0, 50, 50);   -- an earlier run: not this gate's business
create table meta_quarantine_summary (run_id varchar, table_name varchar, reason varchar, column_name varchar,
                                      n bigint);
insert into meta_quarantine_summary values
    ('run-test', 'interactions', 'out_of_range', 'latency_ms', 4),
    ('run-test', 'users', 'null_id', 'user_id', 2),
    ('run-old', 'interactions', 'duplicate_id', 'interaction_id', 50);

create table int_interactions as
with verdicts as (
    select interaction_id,
           bool_or(hallucinated) filter (where tier = 1) as tier1_hallucinated,
           bool_or(hallucinated) filter (where tier = 2) as tier2_hallucinated,
           bool_or(hallucinated) filter (where tier = 3) as tier3_hallucinated
    from stg_adjudications group by interaction_id
),
itv as (select interaction_id, count(*) as n_interventions, sum(duration_s) as intervention_s
        from stg_interventions group by interaction_id),
joined as (
    select i.*, cast(i.ts as date) as activity_date, u.segment, u.signup_date, u.experiment_group,
           v.tier1_hallucinated, v.tier2_hallucinated, v.tier3_hallucinated,
           coalesce(itv.n_interventions, 0) as n_interventions, coalesce(itv.intervention_s, 0) as intervention_s
    from stg_interactions i
    left join stg_users u using (user_id)
    left join verdicts v using (interaction_id)
    left join itv using (interaction_id)
)
select *,
       case when tier2_hallucinated is not null then 2 when tier1_hallucinated is not null then 1 end as final_tier,
       coalesce(tier2_hallucinated, tier1_hallucinated) as is_hallucinated,
       outcome = 'completed' as is_completed,
       outcome = 'completed' and not coalesce(tier2_hallucinated, tier1_hallucinated, false) as is_valid,
       case when outcome = 'completed' and not coalesce(tier2_hallucinated, tier1_hallucinated, false)
                 and verification_ms is not null then (latency_ms + verification_ms) / 1000 end as tta_s
from joined;

create table l6_daily as
select activity_date, feature, domain, segment, model_version, experiment_group,
       count(*) as interactions, count(*) filter (where is_completed) as completed,
       count(is_hallucinated) as adjudicated, count(*) filter (where is_hallucinated) as hallucinated,
       count(*) filter (where is_valid) as valid, count(tier3_hallucinated) as tier3_adjudicated,
       count(*) filter (where tier3_hallucinated) as tier3_hallucinated,
       sum(n_interventions) as interventions, sum(intervention_s) as intervention_s,
       coalesce(sum(cost_usd), 0) as cost_usd, count(tta_s) as tta_n, coalesce(sum(tta_s), 0) as tta_sum_s,
       count(*) filter (where outcome in ('corrected', 'escalated')) as ce_n,
       coalesce(sum(intervention_s) filter (where outcome in ('corrected', 'escalated')), 0) as ce_intervention_s
from int_interactions group by all;

create table tickets_daily as
select cast(t.created_ts as date) as created_date, u.segment, u.experiment_group, count(*) as tickets,
       count(*) filter (where t.escalated) as escalated_tickets, sum(t.handle_time_min) as handle_time_min
from stg_support_tickets t left join stg_users u using (user_id) group by all;
"""


def build(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A small warehouse every suite passes on; raw_* are the source as CSV reads it (all VARCHAR)."""
    con.execute("set TimeZone = 'UTC'")
    con.execute(BUILD_SQL)
    for t in RAW_TABLES:
        con.execute(f"create table raw_{t} as select columns(*)::varchar from stg_{t}")
        con.execute(f"create temp view src_{t} as select * from raw_{t}")
    return con


@pytest.fixture(scope="module", autouse=True)
def _gx_context():
    from pipelines import gx_duckdb

    gx_duckdb.context()  # once per test process


@pytest.fixture()
def con():
    c = build(duckdb.connect())
    yield c
    c.close()


def issues(outcome: gates.GateOutcome) -> dict:
    return {(i["suite"], i["expectation"], i["column"]): i for i in outcome.failures + outcome.warnings}


# ------------------------------------------------------------------ every suite passes
@pytest.mark.parametrize("stage", ["raw", "staging", "metrics"])
def test_good_warehouse_passes_every_suite(con, stage):
    outcome = gates.run_gate(con, stage, RUN)
    assert outcome.success and outcome.failures == [] and outcome.warnings == [], outcome
    suites = {p.stem for p in gates.suite_files(stage)}
    recorded = con.execute("select suite, count(*), bool_and(success) from meta_gate_results "
                           "where run_id = ? and stage = ? group by suite", [RUN, stage]).fetchall()
    assert {s for s, _, _ in recorded} == suites
    assert all(ok for _, _, ok in recorded)


def test_empty_optional_tables_pass(con):
    """SPEC §2 tables other than users and interactions may be empty: warnings at most."""
    for t in ["adjudications", "interventions", "user_activity", "support_tickets"]:
        con.execute(f"delete from raw_{t}")
        con.execute(f"delete from stg_{t}")
    con.execute("delete from stg_infra_costs")
    con.execute("drop table int_interactions")
    con.execute("drop table l6_daily")
    con.execute("drop table tickets_daily")
    con.execute(BUILD_SQL[BUILD_SQL.index("create table int_interactions"):])
    raw = gates.run_gate(con, "raw", RUN)
    assert raw.success and {w["expectation"] for w in raw.warnings} == {"expect_table_row_count_to_be_between"}
    for stage in ("staging", "metrics"):
        outcome = gates.run_gate(con, stage, RUN)
        assert outcome.success and outcome.warnings == [], (stage, outcome)


def test_every_stage_table_has_a_suite():
    stems = {p.stem for p in EXPECTATIONS_DIR.glob("*.json")}
    expected = ({f"raw__src_{t}" for t in RAW_TABLES} | {f"staging__stg_{t}" for t in STAGING_TABLES}
                | {"staging__meta_ingest_summary", "metrics__int_interactions", "metrics__l6_daily",
                   "metrics__tickets_daily"})
    assert expected <= stems, expected - stems


def test_suite_files_are_gx_expectations_with_a_severity():
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for path in sorted(EXPECTATIONS_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["name"] == path.stem
        for e in doc["expectations"]:
            assert e["meta"]["severity"] in ("critical", "warning"), (path.name, e)
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()  # GX accepts it


# ------------------------------------------------------------------ each fails for its reason
# (stage, mutation SQL, suite, expectation, column, severity, unexpected_count, gate success)
FAILS = [
    ("raw", "insert into raw_users values (null, '2025-12-05', 'free', 'treatment')",
     "raw__src_users", "expect_column_values_to_not_be_null", "user_id", "warning", 1, True),
    ("raw", "update raw_interactions set outcome = 'succeeded' where interaction_id = 'i3'",
     "raw__src_interactions", "expect_column_values_to_be_in_set", "outcome", "warning", 1, True),
    ("raw", "delete from raw_interactions",
     "raw__src_interactions", "expect_table_row_count_to_be_between", None, "critical", None, False),
    ("raw", "update raw_adjudications set tier = 'x' where interaction_id = 'i4'",
     "raw__src_adjudications", "tier_in_1_2_3", "tier", "warning", 1, True),
    ("raw", "update raw_interventions set kind = 'poke' where intervention_id = 'vi0'",
     "raw__src_interventions", "expect_column_values_to_be_in_set", "kind", "warning", 1, True),
    ("raw", "insert into raw_user_activity values (null, '2026-03-07')",
     "raw__src_user_activity", "expect_column_values_to_not_be_null", "user_id", "warning", 1, True),
    ("staging", "insert into stg_support_tickets select * from stg_support_tickets where ticket_id = 't1'",
     "staging__stg_support_tickets", "expect_column_values_to_be_unique", "ticket_id", "critical", 2, False),
    ("staging", "insert into stg_interactions select * from stg_interactions where interaction_id in ('i1', 'i2')",
     "staging__stg_interactions", "unique_interaction_id", "interaction_id", "critical", 2, False),
    ("staging", "insert into stg_interventions select * from stg_interventions where intervention_id = 'vi0'",
     "staging__stg_interventions", "unique_intervention_id", "intervention_id", "critical", 1, False),
    ("staging", "update stg_users set experiment_group = 'control' where user_id = 'u1'",
     "staging__stg_users", "expect_column_values_to_be_in_set", "experiment_group", "critical", 1, False),
    ("staging", "update stg_interactions set latency_ms = -1 where interaction_id = 'i5'",
     "staging__stg_interactions", "expect_column_values_to_be_between", "latency_ms", "critical", 1, False),
    ("staging", "update stg_interactions set verification_ms = 'nan' where interaction_id = 'i5'",
     "staging__stg_interactions", "no_nan_measures", None, "critical", 1, False),
    ("staging", "update stg_interactions set user_id = 'ghost' where interaction_id in ('i1', 'i2')",
     "staging__stg_interactions", "orphan_user_id", "user_id", "critical", 2, False),
    ("staging", "update stg_interactions set ts = timestamp '2026-03-11 00:00:00' where interaction_id = 'i0'",
     "staging__stg_interactions", "no_future_ts", "ts", "critical", 1, False),
    ("staging", "update meta_runs set as_of = timestamp '2026-04-01 00:00:00'",
     "staging__stg_interactions", "freshness_ts", "ts", "warning", 1, True),
    ("staging", "update stg_adjudications set interaction_id = 'nope' where interaction_id = 'i7'",
     "staging__stg_adjudications", "orphan_interaction_id", "interaction_id", "critical", 1, False),
    ("staging", "update stg_interventions set duration_s = -5 where intervention_id = 'vi3'",
     "staging__stg_interventions", "expect_column_values_to_be_between", "duration_s", "critical", 1, False),
    ("staging", "insert into stg_user_activity select * from stg_user_activity limit 1",
     "staging__stg_user_activity", "unique_user_day", "user_id,activity_date", "critical", 1, False),
    ("staging", "update stg_support_tickets set resolved_ts = created_ts - interval 1 hour where ticket_id = 't1'",
     "staging__stg_support_tickets", "expect_column_pair_values_a_to_be_greater_than_b",
     "resolved_ts,created_ts", "critical", 1, False),
    ("staging", "update stg_infra_costs set cost_usd = -1 where date = date '2026-03-08'",
     "staging__stg_infra_costs", "expect_column_values_to_be_between", "cost_usd", "critical", 1, False),
    ("staging", "update meta_ingest_summary set rows_quarantined = 10, rows_kept = 90 "
                "where run_id = 'run-test' and table_name = 'interactions'",
     "staging__meta_ingest_summary", "quarantine_share_le_5pct", "rows_quarantined", "critical", 1, False),
    ("staging", "update meta_ingest_summary set rows_read = 103, rows_deduplicated = 3 "
                "where run_id = 'run-test' and table_name = 'interactions'",
     "staging__meta_ingest_summary", "no_repeated_rows", "rows_deduplicated", "warning", 1, True),
    ("staging", "insert into meta_quarantine_summary values "
                "('run-test', 'interactions', 'duplicate_id', 'interaction_id', 2)",
     "staging__meta_ingest_summary", "no_repeated_rows", "rows_deduplicated", "warning", 1, True),
    ("staging", "update meta_ingest_summary set rows_kept = 1 where run_id = 'run-test' and table_name = 'users'",
     "staging__meta_ingest_summary", "rows_conserved", None, "critical", 1, False),
    ("metrics", "update int_interactions set is_valid = true where interaction_id = 'i3'",
     "metrics__int_interactions", "valid_implies_completed", None, "critical", 1, False),
    ("metrics", "insert into int_interactions select * from int_interactions where interaction_id = 'i0'",
     "metrics__int_interactions", "one_row_per_staged_interaction", None, "critical", 1, False),
    ("metrics", "update l6_daily set completed = interactions + 1 where activity_date = date '2026-03-08' "
                "and feature = 'code_assistant' and domain = 'billing'",
     "metrics__l6_daily", "expect_column_pair_values_a_to_be_greater_than_b", "interactions,completed",
     "critical", 1, False),
    ("metrics", "delete from l6_daily where activity_date = date '2026-03-08' and domain = 'billing'",
     "metrics__l6_daily", "interactions_add_up", "interactions", "critical", 1, False),
    ("metrics", "update l6_daily set interventions = interventions + 1 where activity_date = date '2026-03-07' "
                "and domain = 'code'",
     "metrics__l6_daily", "interventions_add_up", "interventions", "critical", 1, False),
    ("metrics", "update l6_daily set activity_date = date '2026-03-06' where activity_date = date '2026-03-08'",
     "metrics__l6_daily", "no_missing_days", "activity_date", "warning", 1, True),
    ("metrics", "update l6_daily set ce_n = interactions + 1 where activity_date = date '2026-03-08' "
                "and feature = 'code_assistant' and domain = 'billing'",
     "metrics__l6_daily", "expect_column_pair_values_a_to_be_greater_than_b", "interactions,ce_n",
     "critical", 1, False),
    ("metrics", "delete from tickets_daily where created_date = (select min(created_date) from tickets_daily)",
     "metrics__tickets_daily", "tickets_add_up", "tickets", "critical", 1, False),
    ("metrics", "update tickets_daily set handle_time_min = -1",
     "metrics__tickets_daily", "expect_column_values_to_be_between", "handle_time_min", "critical", 2, False),
]


@pytest.mark.parametrize("stage,mutation,suite,expectation,column,severity,unexpected,gate_ok", FAILS,
                         ids=[f"{f[2]}:{f[3]}" for f in FAILS])
def test_suite_fails_for_the_right_reason(con, tmp_path, stage, mutation, suite, expectation, column, severity,
                                         unexpected, gate_ok):
    shutil.copy(EXPECTATIONS_DIR / f"{suite}.json", tmp_path)  # only this suite: keeps the test fast
    con.execute(mutation)
    outcome = gates.run_gate(con, stage, RUN, suites_dir=tmp_path)
    found = issues(outcome)
    assert (suite, expectation, column) in found, sorted(found)
    issue = found[(suite, expectation, column)]
    assert issue["severity"] == severity
    assert issue["unexpected_count"] == unexpected, issue
    assert outcome.success is gate_ok
    assert (issue in outcome.failures) is (severity == "critical")
    assert not str(issue["observed_value"]).startswith("error"), issue
    row = con.execute("""select severity, success, unexpected_count from meta_gate_results
                         where run_id = ? and suite = ? and expectation = ? and column_name is not distinct from ?""",
                      [RUN, suite, expectation, column]).fetchall()
    assert row == [(severity, False, unexpected)]


def test_failures_carry_samples_and_a_message(con):
    con.execute("update stg_interactions set user_id = 'ghost' where interaction_id = 'i1'")
    con.execute("update stg_interactions set latency_ms = -7 where interaction_id = 'i2'")
    found = issues(gates.run_gate(con, "staging", RUN))
    orphan = found[("staging__stg_interactions", "orphan_user_id", "user_id")]
    assert json.loads(orphan["sample_values"]) == [{"user_id": "ghost"}]
    assert "user_id=ghost" in orphan["observed_value"]
    latency = found[("staging__stg_interactions", "expect_column_values_to_be_between", "latency_ms")]
    assert json.loads(latency["sample_values"]) == [-7.0]
    assert latency["message"].startswith("staging__stg_interactions: expect_column_values_to_be_between (latency_ms)")


def test_quarantine_share_names_the_table(con):
    con.execute("update meta_ingest_summary set rows_quarantined = 20, rows_kept = 80 "
                "where run_id = 'run-test' and table_name = 'interactions'")
    outcome = gates.run_gate(con, "staging", RUN)
    [failure] = [f for f in outcome.failures if f["expectation"] == "quarantine_share_le_5pct"]
    assert "table_name=interactions" in failure["observed_value"]
    assert "interactions" in failure["message"]


# ------------------------------------------------------------------ suites are data
@pytest.fixture()
def suites_dir(tmp_path) -> Path:
    d = tmp_path / "expectations"
    shutil.copytree(EXPECTATIONS_DIR, d)
    return d


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_editing_a_suite_changes_the_gate(con, suites_dir):
    # 4 of 97 distinct interactions quarantined (4.1%): passes at 5%, fails at 2%
    assert gates.run_gate(con, "staging", RUN, suites_dir=suites_dir).success

    def stricter(doc):
        for e in doc["expectations"]:
            if e["meta"].get("name") == "quarantine_share_le_5pct":
                e["kwargs"]["unexpected_rows_query"] = e["kwargs"]["unexpected_rows_query"].replace("0.05 *", "0.02 *")
    _edit(suites_dir / "staging__meta_ingest_summary.json", stricter)
    outcome = gates.run_gate(con, "staging", RUN, suites_dir=suites_dir)
    assert not outcome.success
    assert [f["expectation"] for f in outcome.failures] == ["quarantine_share_le_5pct"]


def test_editing_severity_turns_a_failure_into_a_warning(con, suites_dir):
    con.execute("update stg_users set experiment_group = 'control' where user_id = 'u1'")
    assert not gates.run_gate(con, "staging", RUN, suites_dir=suites_dir).success

    def soften(doc):
        for e in doc["expectations"]:
            if e["kwargs"].get("column") == "experiment_group":
                e["meta"]["severity"] = "warning"
    _edit(suites_dir / "staging__stg_users.json", soften)
    outcome = gates.run_gate(con, "staging", RUN, suites_dir=suites_dir)
    assert outcome.success
    assert [(w["expectation"], w["column"]) for w in outcome.warnings] == [
        ("expect_column_values_to_be_in_set", "experiment_group")]


def test_a_disabled_expectation_is_not_evaluated(con, suites_dir):
    con.execute("update stg_users set experiment_group = 'control' where user_id = 'u1'")
    _edit(suites_dir / "staging__stg_users.json",
          lambda doc: [e["meta"].update(enabled=False) for e in doc["expectations"]
                       if e["kwargs"].get("column") == "experiment_group"])
    assert gates.run_gate(con, "staging", RUN, suites_dir=suites_dir).success
    n = con.execute("select count(*) from meta_gate_results where column_name = 'experiment_group'").fetchall()
    assert n == [(0,)]


def test_a_new_stage_needs_only_a_file(con, suites_dir):
    for old in [*suites_dir.glob("bridge__*.json"), *suites_dir.glob("audit__*.json")]:  # the project's own: not this test's
        old.unlink()
    con.execute("create table bridge_edges as select 'tcr' as metric, 0.4 as estimate, 0.1 as lo, 0.7 as hi")
    (suites_dir / "bridge__bridge_edges.json").write_text(json.dumps({"name": "bridge__bridge_edges", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "metric"}, "meta": {"severity": "critical"}},
        {"type": "unexpected_rows_expectation", "meta": {"severity": "warning", "name": "interval_holds_estimate"},
         "kwargs": {"unexpected_rows_query": "select metric from {batch} where not (lo <= estimate and estimate <= hi)"}},
    ]}))
    assert gates.run_gate(con, "bridge", RUN, suites_dir=suites_dir).success
    con.execute("update bridge_edges set estimate = 0.9")
    outcome = gates.run_gate(con, "bridge", RUN, suites_dir=suites_dir)
    assert outcome.success and [w["expectation"] for w in outcome.warnings] == ["interval_holds_estimate"]
    assert gates.run_gate(con, "audit", RUN, suites_dir=suites_dir) == gates.GateOutcome("audit", True, [], [])


def test_missing_table_skips_its_suite_as_a_warning(con):
    con.execute("drop table stg_infra_costs")
    outcome = gates.run_gate(con, "staging", RUN)
    assert outcome.success
    assert [(w["suite"], w["expectation"]) for w in outcome.warnings] == [("staging__stg_infra_costs", "suite_skipped")]
    assert "does not exist" in outcome.warnings[0]["observed_value"]


def test_expectation_errors_are_failures_of_their_severity(con, suites_dir):
    (suites_dir / "staging__stg_users.json").write_text(json.dumps({"name": "staging__stg_users", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"},
         "meta": {"severity": "warning"}},
        {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": "select * from {batch} where nope > 1"},
         "meta": {"severity": "critical", "name": "bad_sql"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "user_id", "min_value": 0},
         "meta": {"severity": "critical"}},  # VARCHAR against a number: DuckDB refuses
        {"type": "expect_no_such_thing", "kwargs": {}, "meta": {"severity": "warning"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id", "bogus": 1},
         "meta": {"severity": "warning"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"},
         "meta": {"severity": "fatal"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"},
         "meta": {"severity": "critical"}},
    ]}))
    outcome = gates.run_gate(con, "staging", RUN, suites_dir=suites_dir)
    rows = con.execute("""select expectation, column_name, severity, success, observed_value from meta_gate_results
                          where suite = 'staging__stg_users' order by rowid""").fetchall()
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("expect_column_values_to_not_be_null", "warning", False),
        ("bad_sql", "critical", False),
        ("expect_column_values_to_be_between", "critical", False),
        ("expect_no_such_thing", "warning", False),
        ("expect_column_values_to_not_be_null", "warning", False),
        ("expect_column_values_to_not_be_null", "critical", False),  # bad severity: counted as critical
        ("expect_column_values_to_not_be_null", "critical", True),
    ]
    for expectation, _, _, success, observed in rows[:-1]:
        assert observed.startswith("error: ") and "Traceback" not in observed and "\n" not in observed, observed
    assert "no_such_column" in rows[0][4] and "nope" in rows[1][4] and "fatal" in rows[5][4]
    assert not outcome.success and len(outcome.failures) == 3 and len(outcome.warnings) == 3


def test_unreadable_suite_file_fails_the_gate(con, suites_dir):
    (suites_dir / "staging__stg_users.json").write_text("{not json")
    outcome = gates.run_gate(con, "staging", RUN, suites_dir=suites_dir)
    assert not outcome.success
    [f] = outcome.failures
    assert (f["suite"], f["expectation"]) == ("staging__stg_users", "suite_file")
    assert "not valid JSON" in f["observed_value"]


# ------------------------------------------------------------------ results and reports
def test_results_table_schema(con):
    gates.run_gate(con, "raw", RUN)
    cols = con.execute("describe meta_gate_results").fetchall()
    assert [(c[0], c[1]) for c in cols] == [
        ("run_id", "VARCHAR"), ("stage", "VARCHAR"), ("suite", "VARCHAR"), ("table_name", "VARCHAR"),
        ("expectation", "VARCHAR"), ("column_name", "VARCHAR"), ("severity", "VARCHAR"), ("success", "BOOLEAN"),
        ("observed_value", "VARCHAR"), ("unexpected_count", "BIGINT"), ("sample_values", "VARCHAR"),
        ("evaluated_at", "TIMESTAMP")]


def test_latest_report(con):
    assert gates.latest_report(con) == {"run_id": None, "success": False, "stages": []}
    gates.run_gate(con, "raw", "run-a", as_of=AS_OF)
    con.execute("update stg_interactions set latency_ms = -1 where interaction_id = 'i5'")
    gates.run_gate(con, "staging", "run-b", as_of=AS_OF)
    report = gates.latest_report(con)
    assert set(report) == {"run_id", "success", "stages"}
    assert report["run_id"] == "run-b" and report["success"] is False
    assert {s["stage"] for s in report["stages"]} == {"staging"}
    for s in report["stages"]:
        assert set(s) == {"stage", "suite", "success", "results"}
        for r in s["results"]:
            assert set(r) == {"expectation", "column", "severity", "success", "unexpected_count", "observed_value"}
    stg = next(s for s in report["stages"] if s["suite"] == "staging__stg_interactions")
    assert stg["success"] is False
    bad = [r for r in stg["results"] if not r["success"]]
    assert [(r["expectation"], r["column"], r["severity"], r["unexpected_count"]) for r in bad] == [
        ("expect_column_values_to_be_between", "latency_ms", "critical", 1)]
    json.dumps(report)  # serialisable as is
    text = gates.report_text(report)
    assert "run-b" in text and "FAILED" in text and "latency_ms" in text and "CRITICAL" in text
    assert "staging__stg_users" in text


def test_latest_report_is_the_pipeline_run_not_an_audit(con):
    gates.run_gate(con, "metrics", "run-a", as_of=AS_OF)
    # an audit records its own gate results later, under its audit id
    con.execute("insert into meta_gate_results (run_id, stage, suite, expectation, severity, success, evaluated_at) "
                "values ('audit-1', 'audit', 'audit__audit_checks', 'x', 'critical', false, now()::timestamp + interval 1 hour)")
    report = gates.latest_report(con)
    assert report["run_id"] == "run-a" and report["success"] is True


def test_report_text_when_passing(con):
    gates.run_gate(con, "metrics", RUN)
    text = gates.report_text(gates.latest_report(con))
    assert text.startswith(f"Gate report for run {RUN}: PASSED")
    assert "metrics__l6_daily" in text
    assert gates.report_text({"run_id": None, "success": False, "stages": []}).startswith("No gate results")


def test_latest_report_needs_no_great_expectations(con, monkeypatch):
    import sys

    gates.run_gate(con, "metrics", RUN)
    monkeypatch.setitem(sys.modules, "great_expectations", None)  # any import would now fail
    assert gates.latest_report(con)["success"] is True


def test_a_gate_waits_for_the_warm_up_import(con, monkeypatch):
    """A gate started while the warm-up thread is still importing GX would find half of
    GX's expectation registry ("unexpected_rows_expectation not found"): it waits first."""
    import threading

    events = []

    class SlowImport:
        def wait(self, timeout=None):
            events.append("waited")
            return True

    warm_up = threading.Thread(target=lambda: None)
    warm_up.gx_ready = SlowImport()
    monkeypatch.setattr(gates, "_warm_up", warm_up)
    outcome = gates.run_gate(con, "metrics", RUN)
    assert events == ["waited"] and outcome.success


def test_one_warm_up_per_process_whoever_asks(monkeypatch):
    """Callers on several threads at once (a run, the demo build) share one warm-up; its
    `then` runs after GX is ready, and a gate does not wait for it."""
    import threading
    import time

    from pipelines import gx_duckdb

    calls = []
    monkeypatch.setattr(gates, "_warm_up", None)
    monkeypatch.setattr(gx_duckdb, "context", lambda: (calls.append("gx"), time.sleep(0.2)))
    release, then_started = threading.Event(), threading.Event()

    def then():
        calls.append("then")
        then_started.set()
        release.wait(5)  # a slow later-stage import
        calls.append("then done")

    got, start = [], threading.Barrier(8)

    def ask():
        start.wait()
        got.append(gates.warm_up_in_background(then=then))

    askers = [threading.Thread(target=ask) for _ in range(8)]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    assert len({id(t) for t in got}) == 1
    assert got[0].gx_ready.wait(5) and then_started.wait(5)
    assert calls == ["gx", "then"]  # GX usable while `then` still runs
    release.set()
    got[0].join(5)
    assert calls == ["gx", "then", "then done"]


# ------------------------------------------------------------------ warnings travel with the numbers
def test_metrics_touched_follows_the_contract_inputs():
    from pipelines import config

    assert config.metrics_touched("raw", "src_infra_costs") == ["cpvo_usd"]
    assert config.metrics_touched("staging", "stg_user_activity") == ["retention_delta_pts"]
    assert config.metrics_touched("staging", "stg_interventions") == ["hitl_per_100"]
    assert set(config.metrics_touched("raw", "src_adjudications")) == {"hr", "tta_p50_s", "cpvo_usd"}
    assert config.metrics_touched("raw", "src_support_tickets") == []  # the bridge's input, not an L6 one
    assert config.metrics_touched("metrics", "l6_daily") == list(config.METRICS)
    assert config.metrics_touched("bridge", "bridge_chains") == []


def test_l6_status_carries_the_warnings_of_the_served_run(demo_db, tmp_path):
    from helpers_source import cli

    # the demo's data end months before its run: stale data is said once, on stderr (stdout
    # stays the SPEC table), and in no metric's warnings column
    p = cli("l6", "--db", demo_db, "--by", "quarter", "--status", "--format", "json")
    assert p.returncode == 0 and "note (the data stop short of the run)" in p.stderr and "freshness_ts" in p.stderr
    assert all("freshness" not in r[f"{m}_warnings"] for r in json.loads(p.stdout) for m in ("tcr", "hr"))

    db = tmp_path / "w.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    served = con.execute("select run_id from meta_runs where status = 'success' "
                         "order by started_at desc limit 1").fetchall()[0][0]
    con.execute("delete from meta_gate_results where severity = 'warning' and not success")
    con.execute("""insert into meta_gate_results (run_id, stage, suite, table_name, expectation, column_name,
                       severity, success, observed_value, evaluated_at)
                   values (?, 'raw', 'raw__src_user_activity', 'src_user_activity', 'activity_not_after_data_end',
                           'activity_date', 'warning', false, '3 unexpected row(s)', now()::timestamp),
                          ('an-older-failed-run', 'raw', 'raw__src_infra_costs', 'src_infra_costs', 'x',
                           'cost_usd', 'warning', false, 'not served', now()::timestamp)""", [served])
    con.close()
    p = cli("l6", "--db", db, "--by", "quarter", "--status", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert "note (the data stop" not in p.stderr  # its warning was deleted above
    rows = json.loads(p.stdout)
    for r in rows:
        assert "activity_not_after_data_end (activity_date)" in r["retention_delta_pts_warnings"]
        assert "3 unexpected row(s)" in r["retention_delta_pts_warnings"]
        for m in ("tcr", "hr", "tta_p50_s", "hitl_per_100", "cpvo_usd"):
            assert r[f"{m}_warnings"] == "", m  # not an input of theirs; the other run is not served


# ------------------------------------------------------------------ a failed gate end to end
def test_a_failed_critical_gate_keeps_the_last_good_results_served(demo_db, tmp_path):
    """A source with 10% unknown outcomes: the quarantine share (critical, 5%) fails in
    staging; the run exits 1, `l6` still prints the previous good numbers, `validate`
    reports the failure; a later run on an unreadable source is reported too."""
    from helpers_source import cli

    db = tmp_path / "w.duckdb"
    shutil.copy(demo_db, db)
    before = cli("l6", "--db", db, "--by", "quarter", "--format", "json")
    assert before.returncode == 0, before.stderr
    good = json.loads(cli("validate", "--db", db, "--format", "json").stdout)
    assert good["success"] is True
    assert set(good) == {"run_id", "success", "stages"}
    assert {s["stage"] for s in good["stages"]} >= {"raw", "staging", "metrics", "bridge", "audit"}

    bad = tmp_path / "bad_source"
    shutil.copytree(demo_db.parent / "source", bad)
    con = duckdb.connect()
    con.execute(f"""copy (select * replace (case when hash(interaction_id) % 10 = 0 then 'succeeded'
                                                  else outcome end as outcome)
                          from read_parquet('{demo_db.parent / "source" / "interactions.parquet"}'))
                    to '{bad / "interactions.parquet"}' (format parquet)""")
    con.close()
    p = cli("run", "--source", bad, "--db", db)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "quarantine_share" in p.stdout + p.stderr
    assert (tmp_path / "w.duckdb.failed").exists()

    after = cli("l6", "--db", db, "--by", "quarter", "--format", "json")
    assert after.returncode == 0
    _same_l6(json.loads(after.stdout), json.loads(before.stdout))
    v = cli("validate", "--db", db, "--format", "json")
    assert v.returncode == 1, v.stderr
    report = json.loads(v.stdout)
    assert report["run_id"] != good["run_id"] and report["success"] is False
    assert [s["stage"] for s in report["stages"]][-1] == "staging"  # nothing ran after the failed stage
    failed = [(s["suite"], r["expectation"], r["severity"]) for s in report["stages"] for r in s["results"]
              if not r["success"] and r["severity"] == "critical"]
    assert ("staging__meta_ingest_summary", "quarantine_share_le_5pct", "critical") in failed
    text = cli("validate", "--db", db)
    assert text.returncode == 1 and "FAILED" in text.stdout and "quarantine_share_le_5pct" in text.stdout

    (bad / "users.parquet").unlink()  # a whole-table problem: exit 2, reported as the latest run
    p = cli("run", "--source", bad, "--db", db)
    assert p.returncode == 2 and "users" in p.stderr and "Traceback" not in p.stderr
    v = cli("validate", "--db", db, "--format", "json")
    report2 = json.loads(v.stdout)
    assert v.returncode == 1 and report2["run_id"] not in (good["run_id"], report["run_id"])
    assert report2 == {"run_id": report2["run_id"], "success": False, "stages": []}
    _same_l6(json.loads(cli("l6", "--db", db, "--by", "quarter", "--format", "json").stdout), json.loads(before.stdout))


def _same_l6(rows: list[dict], expected: list[dict]) -> None:
    # the same warehouse tables: equal up to the order of a parallel floating-point sum
    assert [r["period_start"] for r in rows] == [r["period_start"] for r in expected]
    for r, e in zip(rows, expected):
        assert set(r) == set(e)
        for k, v in e.items():
            assert r[k] == (v if isinstance(v, str) or v is None else pytest.approx(v, rel=1e-12)), k


def test_validate_without_gate_results_says_so(tmp_path):
    from helpers_source import cli

    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    p = cli("validate", "--db", db)
    assert p.returncode == 2 and "no recorded run" in p.stderr and "Traceback" not in p.stderr
    p = cli("bridge", "--db", tmp_path / "missing.duckdb")
    assert p.returncode == 2 and "does not exist" in p.stderr
    (tmp_path / "junk.duckdb").write_text("not a database")
    for cmd in ("bridge", "audit", "validate", "l6"):
        args = ["--by", "all"] if cmd == "l6" else []
        p = cli(cmd, "--db", tmp_path / "junk.duckdb", *args)
        assert p.returncode == 2 and "cannot open warehouse" in p.stderr and "Traceback" not in p.stderr, (cmd, p.stderr)


def test_served_warnings_read_in_words_when_the_suite_says_what_it_expects():
    c = duckdb.connect()
    c.execute("create table meta_runs (run_id varchar, status varchar, started_at timestamp)")
    c.execute("insert into meta_runs values ('r1', 'success', timestamp '2026-12-01 00:00:00')")
    c.execute(gates.RESULTS_DDL)
    c.execute("""insert into meta_gate_results (run_id, stage, suite, table_name, expectation, column_name,
                     severity, success, observed_value, evaluated_at)
                 values ('r1', 'staging', 'staging__stg_interactions', 'stg_interactions', 'freshness_ts', 'ts',
                         'warning', false, 'latest=2026-09-30', now()::timestamp)""")
    [w] = gates.served_warnings(c)
    notes = {e["meta"].get("name"): e["meta"]["notes"] for e in json.loads(
        (EXPECTATIONS_DIR / "staging__stg_interactions.json").read_text())["expectations"] if e["meta"].get("notes")}
    assert w["text"] == (f"expected {notes['freshness_ts']}; found latest=2026-09-30 "
                         "[staging__stg_interactions: freshness_ts (ts)]")
    # freshness is about the dates after the data: it touches no metric value
    assert w["applies_to"] == "data_span" and w["metrics"] == []
    c.execute("""insert into meta_gate_results (run_id, stage, suite, table_name, expectation, column_name,
                     severity, success, observed_value, evaluated_at)
                 values ('r1', 'staging', 'staging__stg_interactions', 'stg_interactions', 'orphan_session', null,
                         'warning', false, '3 rows', now()::timestamp + interval 1 second)""")
    other = gates.served_warnings(c)[1]
    assert other["applies_to"] == "metrics" and "tcr" in other["metrics"]


# ------------------------------------------------------------------ staging while GX loads
def _small_source(tmp_path, interactions: bool = True):
    from helpers_source import interaction, user, write_source

    day = "2026-03-03"
    rows = [interaction(f"n{k}", f"{day} 10:0{k}:00", "u1", outcome="completed") for k in range(1, 4)]
    return write_source(tmp_path / "src", {
        "users": [user("u1")],
        "interactions": rows if interactions else [],
        "adjudications": [{"interaction_id": "n1", "tier": 1, "hallucinated": False, "ts": f"{day} 11:00:00"}]
        if interactions else [],
        "user_activity": [{"user_id": "u1", "activity_date": day}],
    })


def _break_staging(monkeypatch) -> None:
    """The first staging model raises."""
    from pipelines import warehouse

    real = warehouse.run_model

    def broken(con, relpath, *a, **kw):
        if relpath == "staging/chk_users.sql":
            raise RuntimeError("boom in staging")
        return real(con, relpath, *a, **kw)

    monkeypatch.setattr(warehouse, "run_model", broken)


def test_staging_runs_while_gx_loads_and_counts_after_the_raw_gate(tmp_path, monkeypatch, capsys):
    """GX still loading: the staging models are built first, then the raw gate, the ingest
    summary and the staging gate; the warehouse is the same as without the overlap."""
    from pipelines import runner, warehouse

    monkeypatch.setattr(gates, "gx_ready", lambda: False)
    result = runner.run(_small_source(tmp_path), tmp_path / "wh.duckdb")
    log = capsys.readouterr().err
    assert result.status == "success", result.message
    assert "(while Great Expectations loads)" in log
    assert log.index("[staging] done") < log.index("[gate raw] passed") < log.index("[gate staging] passed")
    assert {r["table_name"]: r["rows_kept"] for r in result.summary}["interactions"] == 3
    assert list(result.stage_seconds)[:4] == ["raw", "gate_raw", "staging", "gate_staging"]
    con = warehouse.connect(tmp_path / "wh.duckdb", read_only=True)
    stages = [r[0] for r in con.execute("select distinct stage from meta_gate_results where run_id = ? order by 1",
                                        [result.run_id]).fetchall()]
    kept = con.execute("select rows_kept from meta_ingest_summary where run_id = ? and table_name = 'interactions'",
                       [result.run_id]).fetchall()
    con.close()
    assert stages == ["audit", "bridge", "metrics", "raw", "staging"] and kept == [(3,)]


@pytest.mark.parametrize("staging_breaks", [False, True])
def test_a_failed_raw_gate_still_wins_over_early_staging(tmp_path, monkeypatch, capsys, staging_breaks):
    """No interactions (the raw gate's critical row count), the staging built early (or
    broken): the run reports the raw gate, as it would without the overlap, and records no
    ingest summary for the failed run; a staging error is not what the user sees."""
    from pipelines import runner, warehouse

    monkeypatch.setattr(gates, "gx_ready", lambda: False)
    if staging_breaks:
        _break_staging(monkeypatch)
    db = tmp_path / "wh.duckdb"
    result = runner.run(_small_source(tmp_path, interactions=False), db)
    assert result.status == "gate_failed" and "raw" in result.message, result.message
    assert result.summary == [] and "staging" not in result.stage_seconds
    assert ("[staging] done" in capsys.readouterr().err) is not staging_breaks  # it was built early
    con = warehouse.connect(db, read_only=True)
    assert con.execute("select failed_stage from meta_runs where run_id = ?", [result.run_id]).fetchall() == [("raw",)]
    assert con.execute("select count(*) from meta_ingest_summary where run_id = ?", [result.run_id]).fetchall() == [(0,)]
    con.close()


def test_a_staging_error_surfaces_after_a_passing_raw_gate(tmp_path, monkeypatch, capsys):
    from pipelines import runner

    monkeypatch.setattr(gates, "gx_ready", lambda: False)
    _break_staging(monkeypatch)
    with pytest.raises(RuntimeError, match="boom in staging"):
        runner.run(_small_source(tmp_path), tmp_path / "wh.duckdb")
    log = capsys.readouterr().err
    assert "[gate raw] passed" in log  # the raw gate ran before the error was raised
    assert not (tmp_path / "wh.duckdb").exists() and not (tmp_path / "wh.duckdb.building").exists()
