"""Great Expectations gates between the stages (SPEC §5).

Suites are data: `expectations/<stage>__<table>.json`, one per table, read at run time
(editing a file changes the gate; a new stage needs only new files). A suite file is
GX's own suite shape:

    {"name": "staging__stg_users",
     "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "user_id"},
         "meta": {"severity": "critical"}},
        {"type": "unexpected_rows_expectation",
         "kwargs": {"unexpected_rows_query": "select user_id from {batch} where ..."},
         "meta": {"severity": "warning", "name": "orphan_user_id", "column": "user_id"}}]}

`type`/`kwargs` are GX expectation names and arguments. `meta.severity` is `critical`
(a failure stops the stages after this one) or `warning` (shown beside the numbers);
`meta.name` (optional) names the check in reports instead of its type, `meta.column`
(optional) the column a custom-SQL check is about, `meta.notes` says in words what the
check expects (warnings are shown in these words), `meta.applies_to: "data_span"` marks a
check about how far the data reach (freshness): its warning is shown beside the data's
dates, not on the metric values of periods the data cover, and `meta.enabled: false`
switches an expectation off. The table is the part of the file name after `__`.

Custom SQL checks (`unexpected_rows_expectation`) fail when their query returns rows.
`{batch}` expands to the table as a derived table `(...) AS subselect` (write literal
braces as `{{ }}`); if the query contains the word JOIN, the expansion carries no alias
and the query must give one (`from {batch} as i join ...`). Run parameters come from
the TEMP table `gate_run(run_id, stage, as_of)` that `run_gate` writes first, e.g.
`where ts > (select as_of from gate_run)`; they are also passed to GX as expectation
parameters (`{"$PARAMETER": "run_id"}`).

Every check runs as SQL inside the pipeline's DuckDB connection (see gx_duckdb.py),
so the TEMP views of the raw stage are visible. Each expectation's outcome is written
to `meta_gate_results`; an expectation that errors counts as a failure of its severity
with the error text as observed value, never a traceback.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines import EXPECTATIONS_DIR

SEVERITIES = ("critical", "warning")
SAMPLE_SIZE = 5  # unexpected values / rows kept per failed expectation

RESULTS_DDL = """
create table if not exists meta_gate_results (
    run_id varchar,
    stage varchar,
    suite varchar,
    table_name varchar,
    expectation varchar,
    column_name varchar,
    severity varchar,
    success boolean,
    observed_value varchar,
    unexpected_count bigint,
    sample_values varchar,
    evaluated_at timestamp
)
"""
_RESULT_COLUMNS = ("run_id", "stage", "suite", "table_name", "expectation", "column_name", "severity",
                   "success", "observed_value", "unexpected_count", "sample_values", "evaluated_at")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# cheap first pass: counts only (no sample queries); samples are fetched for failures only
_COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}
_WITH_SAMPLES = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE}


@dataclass
class GateOutcome:
    stage: str
    success: bool
    failures: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the fix."""


def warm_up_in_background(then=None) -> threading.Thread:
    """Import Great Expectations and build its context in a background thread (it costs
    seconds of Python), so a caller can overlap it with other work. `then` (optional) runs
    next in the same thread: imports a later stage needs. Once per process: any later
    caller, on any thread, gets the same thread (and its `then`). A gate waits only until
    GX is usable (`gx_ready`), not for `then`."""

    def work() -> None:
        try:
            from pipelines import gx_duckdb

            gx_duckdb.context()
        except Exception:  # the gate itself reports any real problem when it runs
            pass
        finally:
            thread.gx_ready.set()
        if then is not None:
            try:
                then()
            except Exception:  # the stage that needs it imports it again and says what failed
                pass

    global _warm_up
    with _warm_up_lock:
        if _warm_up is None:
            thread = threading.Thread(target=work, name="gx-warm-up", daemon=True)
            thread.gx_ready = threading.Event()
            thread.start()  # if it cannot start, no gate is left waiting for it
            _warm_up = thread
    return _warm_up


_warm_up = None
_warm_up_lock = threading.Lock()


def gx_ready() -> bool:
    """The warm-up has imported Great Expectations and built its context (a gate would
    start at once); False while it works, or when no warm-up was started."""
    return _warm_up is not None and _warm_up.gx_ready.is_set()


# ------------------------------------------------------------------------ suite files
def suite_files(stage: str, suites_dir: str | Path | None = None) -> list[Path]:
    if not _NAME.fullmatch(stage):
        raise ValueError(f"stage {stage!r} is not a valid stage name")
    return sorted(Path(suites_dir or EXPECTATIONS_DIR).glob(f"{stage}__*.json"))


def load_suite(path: Path) -> dict:
    """{'name', 'table', 'entries': [{type, kwargs, meta, severity, name, column, error}]}."""
    table = path.stem.split("__", 1)[1]
    if not _NAME.fullmatch(table):
        raise SuiteError(f"{path.name}: `{table}` is not a table name (files are <stage>__<table>.json)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SuiteError(f"{path.name}: not valid JSON ({exc}); fix the file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError(f"{path.name}: expected an object with an `expectations` list")
    entries = []
    for i, raw in enumerate(doc["expectations"]):
        entry = {"type": None, "kwargs": {}, "meta": {}, "severity": "critical", "error": None}
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            entry.update(type=f"expectations[{i}]", error="each expectation needs a `type` (a GX expectation name)")
            entries.append(entry)
            continue
        meta = raw.get("meta") or {}
        kwargs = raw.get("kwargs") or {}
        if meta.get("enabled", True) is False:
            continue  # switched off in the file: not evaluated, not recorded
        severity = meta.get("severity", raw.get("severity", "critical"))
        entry.update(type=raw["type"], kwargs=kwargs, meta=meta,
                     severity=severity if severity in SEVERITIES else "critical")
        if severity not in SEVERITIES:
            entry["error"] = f"severity {severity!r} is not one of {', '.join(SEVERITIES)}"
        entries.append(entry)
    return {"name": doc.get("name") or path.stem, "table": table, "entries": entries}


# ------------------------------------------------------------------------ the gate
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """A table or view (TEMP included) visible to unqualified queries on `con`."""
    return bool(con.execute(
        """select count(*) from (
               select table_name as name from duckdb_tables() where database_name in (current_database(), 'temp')
               union all
               select view_name from duckdb_views() where database_name in (current_database(), 'temp')
           ) where name = ?""", [name]).fetchall()[0][0])


def _run_as_of(con: duckdb.DuckDBPyConnection, run_id: str) -> dt.datetime:
    """The run's as-of time from meta_runs when recorded, else now (UTC)."""
    if _relation_exists(con, "meta_runs"):
        cols = {r[0] for r in con.execute("describe meta_runs").fetchall()}
        if "as_of" in cols:
            rows = con.execute("select as_of from meta_runs where run_id = ?", [run_id]).fetchall()
            if rows and rows[0][0] is not None:
                return rows[0][0]
    return _now()


def run_gate(con: duckdb.DuckDBPyConnection, stage: str, run_id: str,
             suites_dir: str | Path | None = None, as_of: dt.datetime | None = None) -> GateOutcome:
    """Validate every `<stage>__*.json` suite against its table in `con`; record and return the outcome."""
    if _warm_up is not None:  # GX half-imported by the warm-up thread has half its registry
        _warm_up.gx_ready.wait()
    as_of = as_of or _run_as_of(con, run_id)
    con.execute("create or replace temp table gate_run as "
                "select cast(? as varchar) as run_id, cast(? as varchar) as stage, cast(? as timestamp) as as_of",
                [run_id, stage, as_of])
    con.execute(RESULTS_DDL)
    params = {"run_id": run_id, "stage": stage, "as_of": as_of.isoformat()}
    rows: list[dict] = []
    for path in suite_files(stage, suites_dir):
        rows += _run_suite(con, stage, path, params)
    for r in rows:
        r["run_id"] = run_id
    if rows:
        con.executemany(f"insert into meta_gate_results ({', '.join(_RESULT_COLUMNS)}) "
                        f"values ({', '.join('?' for _ in _RESULT_COLUMNS)})",
                        [[r[c] for c in _RESULT_COLUMNS] for r in rows])
    failures = [_issue(r) for r in rows if not r["success"] and r["severity"] == "critical"]
    warnings = [_issue(r) for r in rows if not r["success"] and r["severity"] == "warning"]
    return GateOutcome(stage=stage, success=not failures, failures=failures, warnings=warnings)


def _issue(r: dict) -> dict:
    what = r["expectation"] + (f" ({r['column_name']})" if r["column_name"] else "")
    return {"stage": r["stage"], "suite": r["suite"], "table": r["table_name"],
            "expectation": r["expectation"], "column": r["column_name"], "severity": r["severity"],
            "observed_value": r["observed_value"], "unexpected_count": r["unexpected_count"],
            "sample_values": r["sample_values"],
            "message": f"{r['suite']}: {what} failed [{r['severity']}]: {r['observed_value']}"}


def _row(stage: str, suite: str, table: str, expectation: str, column: str | None, severity: str,
         success: bool, observed: Any = None, unexpected: int | None = None, sample: Any = None) -> dict:
    return {"stage": stage, "suite": suite, "table_name": table, "expectation": expectation,
            "column_name": column, "severity": severity, "success": bool(success),
            "observed_value": None if observed is None else str(observed),
            "unexpected_count": unexpected,
            "sample_values": None if sample is None else json.dumps(sample, default=str),
            "evaluated_at": _now()}


def _label(entry: dict) -> tuple[str, str | None]:
    """(expectation, column) as shown in results."""
    kw, meta = entry["kwargs"], entry["meta"]
    column = kw.get("column") or meta.get("column")
    if not column and kw.get("column_A"):
        column = f"{kw['column_A']},{kw.get('column_B')}"
    if not column and kw.get("column_list"):
        column = ",".join(map(str, kw["column_list"]))
    return str(meta.get("name") or entry["type"]), column


def _run_suite(con: duckdb.DuckDBPyConnection, stage: str, path: Path, params: dict) -> list[dict]:
    try:
        suite = load_suite(path)
    except SuiteError as exc:
        return [_row(stage, path.stem, path.stem.split("__", 1)[-1], "suite_file", None, "critical",
                     False, f"error: {exc}")]
    name, table, entries = suite["name"], suite["table"], suite["entries"]
    if not _relation_exists(con, table):
        return [_row(stage, name, table, "suite_skipped", None, "warning", False,
                     f"table {table} does not exist; suite not evaluated")]

    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from pipelines import gx_duckdb

    rows: list[dict | None] = [None] * len(entries)
    expectations = {}
    for i, entry in enumerate(entries):
        label, column = _label(entry)
        if entry["error"] is None:
            try:
                meta = dict(entry["meta"], kpi_bridge_index=i)
                expectations[i] = ExpectationConfiguration(
                    type=entry["type"], kwargs=entry["kwargs"], meta=meta).to_domain_obj()
            except Exception as exc:  # unknown type, bad kwargs: GX's own message
                entry["error"] = _first_line(exc)
        if entry["error"] is not None:
            rows[i] = _row(stage, name, table, label, column, entry["severity"], False, f"error: {entry['error']}")

    if expectations:
        with gx_duckdb.bound(con):
            try:
                batch = gx_duckdb.batch(table)
                results = batch.validate(ExpectationSuite(name=name, expectations=list(expectations.values())),
                                         result_format=_COUNTS_ONLY, expectation_parameters=params).results
            except Exception as exc:  # the whole suite could not run (GX could not read the table)
                results, error = [], _first_line(exc)
                for i in expectations:
                    label, column = _label(entries[i])
                    rows[i] = _row(stage, name, table, label, column, entries[i]["severity"], False, f"error: {error}")
            for res in results:
                i = res.expectation_config.meta.get("kpi_bridge_index")
                if i in expectations:
                    if not res.success and not _error_text(res):
                        res = _with_samples(batch, entries[i]["type"], expectations[i], res, params)
                    rows[i] = _result_row(stage, name, table, entries[i], res)
    for i, r in enumerate(rows):  # GX returned no result for it: say so rather than drop it
        if r is None:
            label, column = _label(entries[i])
            rows[i] = _row(stage, name, table, label, column, entries[i]["severity"], False,
                           "error: no result from Great Expectations")
    return rows


def _with_samples(batch, type_: str, expectation, res, params):
    """Re-run one failed expectation to fetch a few unexpected values or rows."""
    fmt = "COMPLETE" if type_ == "unexpected_rows_expectation" else _WITH_SAMPLES
    if "unexpected_count" not in res.result and fmt is _WITH_SAMPLES:
        return res  # an aggregate expectation: its observed value says it all
    try:
        again = batch.validate(expectation, result_format=fmt, expectation_parameters=params)
    except Exception:
        return res
    return again if not _error_text(again) else res


def _error_text(res) -> str | None:
    info = res.exception_info or {}
    if "raised_exception" not in info:  # keyed by metric: take the first that raised
        info = next((v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")), {})
    if info.get("raised_exception") in (True, "True"):
        return _first_line(info.get("exception_message") or "error in Great Expectations")
    return None


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    text = re.sub(r"^\((?:_duckdb|duckdb|sqlalchemy\.exc)\.\w+\)\s*", "", text)
    return (text.splitlines() or ["error"])[0][:500]


def _result_row(stage: str, suite: str, table: str, entry: dict, res) -> dict:
    label, column = _label(entry)
    error = _error_text(res)
    if error:
        return _row(stage, suite, table, label, column, entry["severity"], False, f"error: {error}")
    result = res.result or {}
    sample = None
    if entry["type"] == "unexpected_rows_expectation":
        unexpected = result.get("observed_value")
        rows = (result.get("details") or {}).get("unexpected_rows")
        sample = rows[:SAMPLE_SIZE] if rows else None
        observed = f"{unexpected} unexpected row(s)"
        if sample and isinstance(sample[0], dict):
            observed += "; first: " + ", ".join(f"{k}={_short(v)}" for k, v in sample[0].items())
    elif "unexpected_count" in result:
        unexpected = result["unexpected_count"]
        pct = result.get("unexpected_percent")
        observed = (f"{unexpected} of {result.get('element_count')} rows unexpected"
                    + (f" ({pct:.3g}%)" if isinstance(pct, (int, float)) and math.isfinite(pct) else ""))
        sample = result.get("partial_unexpected_list") or None
        if sample:
            observed += "; e.g. " + ", ".join(_short(v) for v in sample[:3])
    else:
        unexpected = None
        observed = result.get("observed_value")
        if not isinstance(observed, str) and observed is not None:
            observed = json.dumps(observed, default=str)
    if isinstance(unexpected, float) and unexpected.is_integer():
        unexpected = int(unexpected)
    return _row(stage, suite, table, label, column, entry["severity"], res.success, observed,
                unexpected if isinstance(unexpected, int) else None, sample)


def _short(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------ reports
def latest_report(con: duckdb.DuckDBPyConnection) -> dict:
    """The gate results of the latest run recorded in meta_gate_results (no GX import)."""
    empty = {"run_id": None, "success": False, "stages": []}
    if not _relation_exists(con, "meta_gate_results"):
        return empty
    # the latest pipeline run (a run that stopped before its first gate, e.g. on an
    # unreadable source, is the latest run all the same: it reports no stages and fails);
    # audits record their own gate results under their audit id: not a run
    latest = []
    if _relation_exists(con, "meta_runs"):
        latest = con.execute("select run_id from meta_runs where status <> 'running' "
                             "order by started_at desc, run_id desc limit 1").fetchall()
    if not latest:
        latest = con.execute("select run_id from meta_gate_results where stage <> 'audit' "
                             "order by evaluated_at desc, run_id desc limit 1").fetchall()
    if not latest:
        return empty
    run_id = latest[0][0]
    rows = con.execute("""
        select stage, suite, expectation, column_name, severity, success, unexpected_count, observed_value,
               min(evaluated_at) over (partition by stage) as stage_at,
               min(evaluated_at) over (partition by stage, suite) as suite_at
        from meta_gate_results where run_id = ?
        order by stage_at, stage, suite_at, suite, rowid
    """, [run_id]).fetchall()
    stages: list[dict] = []
    for stage, suite, expectation, column, severity, success, unexpected, observed, _, _ in rows:
        if not stages or (stages[-1]["stage"], stages[-1]["suite"]) != (stage, suite):
            stages.append({"stage": stage, "suite": suite, "success": True, "results": []})
        stages[-1]["results"].append({"expectation": expectation, "column": column, "severity": severity,
                                      "success": bool(success), "unexpected_count": unexpected,
                                      "observed_value": observed})
        if not success and severity == "critical":
            stages[-1]["success"] = False
    return {"run_id": run_id, "success": bool(stages) and all(s["success"] for s in stages), "stages": stages}


def served_warnings(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The failed warning-severity expectations of the run whose results the warehouse
    serves (its latest successful run), each with the L6 metrics and bridge measures it
    touches (config.metrics_touched, bridge_metrics.touched) — so a warning travels with
    the numbers (SPEC §5) — or none, with `applies_to` = "data_span", for a check on how
    far the data reach (shown beside the data's dates instead)."""
    if not (_relation_exists(con, "meta_gate_results") and _relation_exists(con, "meta_runs")):
        return []
    rows = con.execute("""
        select g.stage, g.suite, g.table_name, g.expectation, g.column_name, g.observed_value,
               g.unexpected_count, g.run_id
        from meta_gate_results as g
        where g.run_id = (select run_id from meta_runs where status = 'success'
                          order by started_at desc limit 1)
          and g.severity = 'warning' and not g.success
        order by g.evaluated_at, g.suite, g.expectation
    """).fetchall()
    from pipelines import bridge_metrics, config

    metas = _metas({st for st, *_ in rows})
    out = []
    for st, suite, table, exp, col, obs, n, run in rows:
        name = f"{suite}: {exp}" + (f" ({col})" if col else "")
        meta = metas.get((suite, exp, col), {})
        note = meta.get("notes")
        # in words first when the suite file says what the check expects
        text = (f"expected {note}; found {obs or 'otherwise'} [{name}]" if note
                else name + (f" — {obs}" if obs else ""))
        # a check on how far the data reach says nothing about the values of the periods
        # they cover: it travels with the data's dates, not with the metrics
        data_span = meta.get("applies_to") == "data_span"
        out.append({"stage": st, "suite": suite, "table": table, "expectation": exp, "column": col,
                    "observed_value": obs, "unexpected_count": n, "run_id": run,
                    "applies_to": "data_span" if data_span else "metrics",
                    "metrics": [] if data_span else config.metrics_touched(st, table) + bridge_metrics.touched(st, table),
                    "text": text})
    return out


def _metas(stages: set[str]) -> dict[tuple, dict]:
    """{(suite, expectation, column): the expectation's `meta`} from the suite files of these
    stages (wording and scope only: no Great Expectations import)."""
    out = {}
    for stage in stages:
        if not _NAME.fullmatch(str(stage)):
            continue
        for path in suite_files(stage):
            try:
                suite = load_suite(path)
            except SuiteError:
                continue
            for e in suite["entries"]:
                label, column = _label(e)
                out[(suite["name"], label, column)] = dict(e["meta"])
    return out


def report_text(report: dict) -> str:
    """The report as plain text: one line per suite, one per failed expectation."""
    if not report.get("run_id"):
        return "No gate results recorded yet (run `python -m pipelines run` or `demo` with gates)."
    if not report["stages"]:
        return (f"Gate report for run {report['run_id']}: FAILED: the run stopped before its first gate "
                "(see its message in meta_runs or on the Data quality page); no expectation was evaluated")
    results = [r for s in report["stages"] for r in s["results"]]
    n_crit = sum(1 for r in results if not r["success"] and r["severity"] == "critical")
    n_warn = sum(1 for r in results if not r["success"] and r["severity"] == "warning")
    head = "PASSED" if report["success"] else f"FAILED: {n_crit} critical failure(s)"
    lines = [f"Gate report for run {report['run_id']}: {head}, {n_warn} warning(s), "
             f"{len(results)} check(s) in {len(report['stages'])} suite(s)"]
    width = max(len(s["suite"]) for s in report["stages"]) if report["stages"] else 10
    for s in report["stages"]:
        passed = sum(1 for r in s["results"] if r["success"])
        status = "ok" if all(r["success"] for r in s["results"]) else ("FAIL" if not s["success"] else "warn")
        lines.append(f"  {s['stage']:<9}{s['suite']:<{width + 2}}{status:<5} {passed}/{len(s['results'])} passed")
        for r in s["results"]:
            if r["success"]:
                continue
            what = r["expectation"] + (f" ({r['column']})" if r["column"] else "")
            tag = "CRITICAL" if r["severity"] == "critical" else "warning"
            lines.append(f"      {tag:<9}{what}: {r['observed_value']}")
    return "\n".join(lines)
