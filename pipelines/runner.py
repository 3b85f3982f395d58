"""The run: ingest -> staging -> L6 metrics -> bridge -> audit, a gate after each stage.

The warehouse is built in `<db>.building` and swapped over the live file only when
every critical gate passed, so a reader never sees a half-built warehouse and a
failed or crashed run leaves the previous one intact. History tables (meta_*,
audit_*) are carried into every new build.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import contract, ingest, warehouse

STAGING_MODELS = [
    "staging/chk_users.sql", "staging/stg_users.sql",
    "staging/chk_interactions.sql", "staging/stg_interactions.sql",
    "staging/chk_adjudications.sql", "staging/stg_adjudications.sql",
    "staging/chk_interventions.sql", "staging/stg_interventions.sql",
    "staging/chk_user_activity.sql", "staging/stg_user_activity.sql",
    "staging/chk_support_tickets.sql", "staging/stg_support_tickets.sql",
    "staging/chk_infra_costs.sql", "staging/stg_infra_costs.sql",
    "staging/quarantine.sql",
]
METRIC_MODELS = [
    "metrics/int_interactions.sql",
    "metrics/int_user_active_days.sql",
    "metrics/l6_daily.sql",
    "metrics/tickets_daily.sql",
]


class GateFailed(Exception):
    def __init__(self, stage: str, failures: list[dict]):
        self.stage, self.failures = stage, failures
        names = "; ".join(f"{f.get('suite', '?')}: {f.get('expectation', '?')}"
                          + (f" on {f['column']}" if f.get("column") else "") for f in failures[:5])
        super().__init__(f"critical gate failed at stage `{stage}`: {names}")


@dataclass
class RunResult:
    run_id: str
    status: str
    db: Path
    stage_seconds: dict = field(default_factory=dict)
    summary: list[dict] = field(default_factory=list)
    message: str = ""
    warnings: list[dict] = field(default_factory=list)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _carry_history(con: duckdb.DuckDBPyConnection, live: Path) -> None:
    if not live.exists():
        return
    con.execute("attach ? as live (read_only)", [str(live)])
    for table in warehouse.history_tables(con, "live"):
        # table names come from the live file's catalog, filtered to meta_/audit_ names
        con.execute(f'create table "{table}" as select * from live.main."{table}"')
    con.execute("detach live")


def _ingest_summary(con, run_id: str, source: str) -> list[dict]:
    rows = []
    for table in contract.tables():  # allow-list of table names
        read = con.execute(f"select count(*) from src_{table}").fetchall()[0][0]
        kept = con.execute(f"select count(*) from stg_{table}").fetchall()[0][0]
        quarantined = con.execute(f"select count(*) from chk_{table} where _problem is not null").fetchall()[0][0]
        distinct = kept + quarantined
        rows.append({"table_name": table, "rows_read": read, "rows_deduplicated": read - distinct,
                     "rows_quarantined": quarantined, "rows_kept": kept})
        con.execute("insert into meta_ingest_summary values (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, table, source, read, read - distinct, quarantined, kept])
    con.execute("""
        insert into meta_quarantine_summary
        select ?, table_name, reason, column_name, count(*) from quarantine group by all
    """, [run_id])
    return rows


def _record_into_live(con: duckdb.DuckDBPyConnection, live: Path, run_id: str) -> None:
    """Append this run's meta rows to the live warehouse (which keeps its good results)."""
    for attempt in range(20):
        try:
            con.execute("attach ? as live", [str(live)])
            break
        except duckdb.IOException:
            time.sleep(0.25 * (attempt + 1))  # a reader holds the file; retry briefly
    else:
        _log(f"warning: could not open {live} to record run {run_id}")
        return
    live_tables = set(warehouse.history_tables(con, "live"))
    for table in warehouse.history_tables(con, con.execute("select current_database()").fetchall()[0][0]):
        if not table.startswith("meta_"):
            continue
        cols = [r[0] for r in con.execute(f'describe "{table}"').fetchall()]
        if "run_id" not in cols:
            continue
        if table not in live_tables:
            con.execute(f'create table live.main."{table}" as select * from "{table}" where false')
        con.execute(f'insert into live.main."{table}" by name select * from "{table}" where run_id = ?', [run_id])
    con.execute("detach live")


def import_later_stages() -> None:
    """The bridge and audit stages' modules (scipy.stats, polars: about a second of Python
    between two stages, measured on the demo): the gates' warm-up thread imports them
    while DuckDB works."""
    from pipelines import audit, bridge  # noqa: F401


def run(source: str | Path, db: str | Path, command: str = "run", gates: bool = True,
        as_of: dt.datetime | None = None) -> RunResult:
    """Build a new warehouse from `source`; raise contract.SourceError for whole-table problems."""
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    build = db.with_name(db.name + ".building")
    warehouse.discard(build)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    as_of = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = RunResult(run_id=run_id, status="running", db=db)

    con = warehouse.connect(build)
    warehouse.set_memory_limit(con, warehouse.run_memory_limit(_source_bytes(source)))
    _carry_history(con, db)
    con.execute(warehouse.sql_text("meta/schema.sql"))
    con.execute("insert into meta_runs (run_id, command, source, as_of, started_at, status) values (?, ?, ?, ?, ?, 'running')",
                [run_id, command, str(source), as_of, dt.datetime.now(dt.UTC).replace(tzinfo=None)])

    if gates:
        from pipelines import gates as gate_mod  # light; great_expectations loads inside

        # importing GX costs seconds of Python: a thread does it while DuckDB ingests and stages
        # (a gate running beside the next stage was tried: the demo gained 1.6 s, but on 10M
        # interactions the two fought over both cores: staging 45 -> 53 s, metrics 35 -> 51 s)
        gate_mod.warm_up_in_background(then=import_later_stages)

    def build_step(name: str, fn, note: str = "") -> None:
        _log(f"[{name}] ...{note}")
        t0 = time.perf_counter()
        fn()
        result.stage_seconds[name] = round(time.perf_counter() - t0, 3)
        _log(f"[{name}] done in {result.stage_seconds[name]:.2f}s")

    def gate(name: str) -> None:
        if not gates:
            return
        t0 = time.perf_counter()
        outcome = gate_mod.run_gate(con, name, run_id)
        result.stage_seconds[f"gate_{name}"] = round(time.perf_counter() - t0, 3)
        result.warnings.extend(outcome.warnings)
        _log(f"[gate {name}] {'passed' if outcome.success else 'FAILED'} "
             f"({len(outcome.failures)} critical failure(s), {len(outcome.warnings)} warning(s)) "
             f"in {result.stage_seconds[f'gate_{name}']:.2f}s")
        if not outcome.success:
            raise GateFailed(name, outcome.failures)

    def stage(name: str, fn) -> None:
        build_step(name, fn)
        gate(name)

    def raw_and_staging() -> None:
        build_step("raw", lambda: ingest.open_source(con, source))
        if not gates or gate_mod.gx_ready():
            gate("raw")
            stage("staging", lambda: (staging_models(), record_ingest_summary()))
            return
        # Great Expectations is still loading (seconds of Python; at 10M interactions ~6 s
        # that the raw gate would only wait): DuckDB builds the staging models meanwhile.
        # Nothing of them counts before the raw gate passes: a failed raw gate is reported
        # as without the overlap (no ingest summary recorded), and an error of the staging
        # is raised only after it.
        error = None
        try:
            build_step("staging", staging_models, note=" (while Great Expectations loads)")
        except Exception as exc:  # noqa: BLE001 - raised below, once the raw gate passed
            error = exc
        staging_s = result.stage_seconds.pop("staging", 0.0)  # recorded once the raw gate passed
        try:
            gate("raw")
        except GateFailed:
            raise
        except Exception:
            if error is not None:  # the staging's error is the cause (e.g. it broke the connection)
                raise error
            raise
        if error is not None:
            raise error
        t0 = time.perf_counter()
        record_ingest_summary()
        result.stage_seconds["staging"] = round(staging_s + time.perf_counter() - t0, 3)
        gate("staging")

    def staging_models() -> None:
        params = {"as_of": as_of}
        con.execute(warehouse.sql_text("meta/macros.sql"))  # utc_timestamp(): TEMP, this run only
        for model in STAGING_MODELS:
            # chk_<table>: every distinct source row, typed, with its check result (written
            # once); stg_<table>: a view of the rows that passed
            kind = "view" if Path(model).stem.startswith("stg_") else "table"
            warehouse.run_model(con, model, params, materialized=kind)

    def record_ingest_summary() -> None:
        result.summary = _ingest_summary(con, run_id, str(source))

    def do_metrics() -> None:
        for model in METRIC_MODELS:
            warehouse.run_model(con, model)

    def finish(status: str, failed_stage: str | None, message: str) -> None:
        con.execute("""update meta_runs set finished_at = ?, status = ?, failed_stage = ?, message = ?,
                       stage_seconds = ? where run_id = ?""",
                    [dt.datetime.now(dt.UTC).replace(tzinfo=None), status, failed_stage, message,
                     json.dumps(result.stage_seconds), run_id])
        result.status, result.message = status, message

    try:
        raw_and_staging()
        stage("metrics", do_metrics)
        from pipelines import audit, bridge

        stage("bridge", lambda: bridge.build(con, run_id))
        recorded: list = []
        stage("audit", lambda: recorded.append(audit.run_stage(con, _log)))
        if recorded and recorded[0] and gates:  # its gate passed (a failure raised above)
            con.execute("update audit_records set gate_success = true where audit_id = ?", [recorded[0]])
    except GateFailed as exc:
        finish("gate_failed", exc.stage, str(exc))
        if db.exists():
            _record_into_live(con, db, run_id)
        else:
            _first_failed_warehouse(con, db, run_id)
        con.close()
        warehouse.discard(build, keep_as=db.with_name(db.name + ".failed"))
        return result
    except contract.SourceError as exc:
        finish("error", "raw", str(exc))
        if db.exists():
            _record_into_live(con, db, run_id)
        con.close()
        warehouse.discard(build)
        raise
    except BaseException:
        con.close()
        warehouse.discard(build)
        raise
    finish("success", None, "")
    for table in contract.tables():
        con.execute(f"drop view if exists src_{table}")
    _resync_audits(con, db)
    con.execute("checkpoint")
    con.close()
    warehouse.swap_in(build, db)
    return result


def demo_source(db: str | Path) -> Path:
    """Where the demo telemetry of warehouse `db` is generated: `<stem>_demo_source/` beside it."""
    db = Path(db)
    return db.parent / f"{db.stem}_demo_source"


class DemoError(ValueError):
    """The demo generation failed; `details` holds its process's whole stderr."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


def build_demo(db: str | Path, seed: int | None = None, users: int | None = None, days: int | None = None,
               on_step=None) -> tuple[RunResult, Path]:
    """Generate demo telemetry into `demo_source(db)`, copy its planted truths beside `db`
    (`<stem>.truths.json`) and run every stage into `db`. `on_step("generate" | "run")`
    reports progress. Returns the run's result and the truths file; raises DemoError
    (a ValueError: the command line's exit code 2) when the generation fails."""
    import os
    import shutil
    import subprocess

    from pipelines import ROOT, config
    from pipelines.gates import warm_up_in_background

    defaults = config.pipeline()["demo"]  # config/pipeline.toml [demo]
    seed = int(defaults["seed"] if seed is None else seed)
    users = int(defaults["users"] if users is None else users)
    days = int(defaults["days"] if days is None else days)
    if users < 1 or days < 1:
        raise DemoError(f"the demo needs at least 1 user and 1 day (got --users {users}, --days {days})")
    db = Path(db)
    source = demo_source(db)
    if on_step:
        on_step("generate")
    # The generation runs in its own Python process (`python -m pipelines.demo_data`) while
    # this one imports Great Expectations: seconds of Python each, which in one process would
    # take turns on the GIL. A plain subprocess, not multiprocessing: under `streamlit run`
    # multiprocessing's spawn would re-run the app script in the child.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.demo_data", str(source.resolve()), "--seed", str(seed),
                             "--users", str(users), "--days", str(days)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        warm_up_in_background(then=import_later_stages)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C, the server stopping): no orphan left running
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        why = (f"stopped by signal {-proc.returncode}" if proc.returncode < 0
               else (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1])
        raise DemoError(f"the demo generation failed: {why}", details=err)
    truths_path = db.parent / f"{db.stem}.truths.json"
    shutil.copyfile(source / "truths.json", truths_path)
    if on_step:
        on_step("run")
    return run(source, db, command="demo"), truths_path


def _resync_audits(con: duckdb.DuckDBPyConnection, live: Path) -> None:
    """Audits recorded or signed in the live warehouse while this run was building (the
    audit page, `python -m pipelines audit`) would be lost by the swap: take the live
    audit tables as they are now, plus this run's own new audits."""
    if not live.exists():
        return
    ours = {t for t in ("audit_records", "audit_checks") if warehouse.table_exists(con, t)}
    con.execute("attach ? as live (read_only)", [str(live)])
    try:
        live_tables = set(warehouse.history_tables(con, "live"))
        for table in ("audit_records", "audit_checks"):  # fixed names: no identifier from input
            if table not in live_tables or table not in ours:
                continue
            con.execute(f"delete from {table} where audit_id in (select audit_id from live.main.{table})")
            con.execute(f"insert into {table} by name select * from live.main.{table}")
    finally:
        con.execute("detach live")


def _source_bytes(source: str | Path) -> int:
    """The source's size on disk (a folder's files, or one DuckDB file); 0 if unreadable."""
    path = Path(source)
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:
        return 0


def _first_failed_warehouse(con, db: Path, run_id: str) -> None:
    """No previous good warehouse: leave one holding only this run's history."""
    fresh = warehouse.connect(db)
    fresh.execute(warehouse.sql_text("meta/schema.sql"))
    fresh.close()
    _record_into_live(con, db, run_id)
