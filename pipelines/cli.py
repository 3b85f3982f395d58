"""`python -m pipelines` — the command line (SPEC §7).

Exit codes: 0 success, 1 a gate failed, 2 bad arguments or unreadable input.
Errors are one clear message on stderr, never a traceback (set KPI_BRIDGE_DEBUG=1 to
see one).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

from pipelines import config

EXIT_OK, EXIT_GATE, EXIT_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or unreadable input: exit 2 with this message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: exit 2 with usage, as usual
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def _db_arg(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--db", type=Path, required=required, default=None if required else config.default_db(),
                   help="warehouse file (default: $KPI_BRIDGE_DB or data/warehouse.duckdb)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pipelines", description="KPI Bridge pipelines")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="build a synthetic demo warehouse and run every stage")
    _db_arg(p)
    demo = config.pipeline()["demo"]  # the defaults live in config/pipeline.toml
    p.add_argument("--seed", type=int, default=demo["seed"])
    p.add_argument("--users", type=int, default=demo["users"])
    p.add_argument("--days", type=int, default=demo["days"])

    p = sub.add_parser("run", help="ingest a telemetry source and run every stage with its gates")
    p.add_argument("--source", type=Path, required=True, help="folder of Parquet/CSV files or a DuckDB file")
    _db_arg(p)

    p = sub.add_parser("l6", help="print the L6 table")
    _db_arg(p, required=True)
    p.add_argument("--by", choices=["day", "week", "month", "quarter", "all"], required=True)
    p.add_argument("--feature")
    p.add_argument("--domain")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--status", action="store_true",
                   help="add <metric>_status, <metric>_threshold and <metric>_warnings (gate warnings "
                        "on the metric's inputs) columns")

    p = sub.add_parser("validate", help="print the latest run's gate report")
    _db_arg(p, required=True)
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("bridge", help="print the KPI bridge for a quarter")
    _db_arg(p, required=True)
    p.add_argument("--quarter", help="e.g. 2026Q3 (default: the latest full quarter)")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = sub.add_parser("audit", help="run (and optionally sign) the 8-week metric audit")
    _db_arg(p, required=True)
    p.add_argument("--as-of", type=dt.date.fromisoformat, help="audit date, YYYY-MM-DD (default: the day after the last data date); the window is the 8 full ISO weeks before it")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--sign", metavar="NAME", help="sign the audit off as NAME")
    p.add_argument("--decision", help="the decision recorded with --sign (keep / iterate / re-define ...)")

    p = sub.add_parser("bench", help="benchmark the run on N generated interactions (JSON)")
    p.add_argument("--interactions", type=int, required=True)
    p.add_argument("--workdir", type=Path, default=None, help="where data is generated (default: a temp dir)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--no-gates", action="store_true", help="time the run without gates too")
    return parser


def _open_warehouse(db: Path):
    from pipelines import warehouse

    if not db.exists():
        raise UsageError(f"warehouse {db} does not exist; build one with "
                         f"`python -m pipelines demo --db {db}` or `python -m pipelines run --source DIR --db {db}`")
    try:
        return warehouse.connect(db, read_only=True)
    except Exception as exc:  # duckdb raises several kinds for a bad file
        raise UsageError(f"cannot open warehouse {db}: {str(exc).splitlines()[0]}") from None


def _print_run(result) -> int:
    print(f"run {result.run_id}: {result.status}" + (f" — {result.message}" if result.message else ""))
    if result.summary:
        print(f"{'table':<17}{'read':>11}{'kept':>11}{'deduplicated':>14}{'quarantined':>13}")
        for r in result.summary:
            print(f"{r['table_name']:<17}{r['rows_read']:>11,}{r['rows_kept']:>11,}"
                  f"{r['rows_deduplicated']:>14,}{r['rows_quarantined']:>13,}")
    from pipelines import warehouse

    if result.status == "success":
        con = warehouse.connect(result.db, read_only=True)
        reasons = con.execute("""select table_name, reason, column_name, n from meta_quarantine_summary
                                 where run_id = ? order by table_name, n desc""", [result.run_id]).fetchall()
        con.close()
        for t, reason, col, n in reasons:
            print(f"  quarantined {t}: {n:,} × {reason} ({col})")
    if result.warnings:
        print(f"{len(result.warnings)} gate warning(s); see `python -m pipelines validate --db {result.db}`")
    secs = ", ".join(f"{k} {v:.2f}s" for k, v in result.stage_seconds.items())
    print(f"stages: {secs}")
    return EXIT_OK if result.status == "success" else EXIT_GATE


def cmd_run(args) -> int:
    from pipelines import runner

    return _print_run(runner.run(args.source, args.db, command="run"))


def cmd_demo(args) -> int:
    import time

    from pipelines import runner

    t0 = time.perf_counter()
    print(f"generating demo telemetry (seed {args.seed}, {args.users:,} users, {args.days} days) into "
          f"{runner.demo_source(args.db)}", file=sys.stderr)
    try:
        result, truths_path = runner.build_demo(args.db, seed=args.seed, users=args.users, days=args.days)
    except runner.DemoError as exc:
        if os.environ.get("KPI_BRIDGE_DEBUG") and exc.details:
            print(exc.details, file=sys.stderr)  # the generation's own output, traceback included
        raise
    code = _print_run(result)
    print(f"planted truths: {truths_path}; demo built in {time.perf_counter() - t0:.1f}s")
    return code


def _json_value(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def cmd_l6(args) -> int:
    import polars as pl

    from pipelines import l6, warehouse

    con = _open_warehouse(args.db)
    if not warehouse.table_exists(con, "l6_daily"):
        raise UsageError(f"warehouse {args.db} holds no good results yet (the first run failed); "
                         f"see `python -m pipelines validate --db {args.db}`")
    filters = {"feature": args.feature, "domain": args.domain}
    table = l6.l6_table(con, args.by, {k: v for k, v in filters.items() if v})
    columns = list(l6.CLI_COLUMNS)
    from pipelines import gates  # reads recorded results only; no great_expectations

    warnings = gates.served_warnings(con)
    if args.status:
        table = l6.with_status(table, warnings)
        columns += [c for m in config.METRICS for c in (f"{m}_status", f"{m}_threshold", f"{m}_warnings")]
    con.close()
    for w in warnings:  # stale data concern every period's reader, not one metric: said on stderr
        if w.get("applies_to") == "data_span":
            print(f"note (the data stop short of the run): {w['text']}", file=sys.stderr)
    table = table.select(columns)
    if args.format == "json":
        rows = [{k: _json_value(v) for k, v in r.items()} for r in table.iter_rows(named=True)]
        print(json.dumps(rows, indent=1))
    else:
        sys.stdout.write(table.with_columns(pl.col("period_start").cast(pl.Utf8)).write_csv())
    return EXIT_OK


def cmd_validate(args) -> int:
    from pipelines import gates

    con = _open_warehouse(args.db)
    report = gates.latest_report(con)
    con.close()
    if report["run_id"] is None:
        raise UsageError(f"warehouse {args.db} has no recorded run with gate results yet; "
                         f"run `python -m pipelines run --source DIR --db {args.db}` first")
    if args.format == "json":
        print(json.dumps(report, indent=1, default=str))
    else:
        print(gates.report_text(report))
    return EXIT_OK if report.get("success") else EXIT_GATE


def cmd_bridge(args) -> int:
    from pipelines import bridge

    _open_warehouse(args.db).close()  # a missing, corrupt or locked file: one line, exit 2
    return bridge.cli(args)


def cmd_audit(args) -> int:
    from pipelines import audit

    _open_warehouse(args.db).close()
    return audit.cli(args)


def cmd_bench(args) -> int:
    from pipelines import bench

    result = bench.run_bench(args.interactions, workdir=args.workdir, seed=args.seed,
                             also_without_gates=args.no_gates)
    print(json.dumps(result, indent=1))
    return EXIT_OK


COMMANDS = {"demo": cmd_demo, "run": cmd_run, "l6": cmd_l6, "validate": cmd_validate,
            "bridge": cmd_bridge, "audit": cmd_audit, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipelines.contract import SourceError

    try:
        return COMMANDS[args.command](args)
    except (SourceError, UsageError, config.ConfigError, ValueError) as exc:
        if os.environ.get("KPI_BRIDGE_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
