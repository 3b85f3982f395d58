"""Helpers to write tiny telemetry sources (SPEC §2) and to drive the CLI.

Owned by the independent checker. Nothing here reads the project's SQL or l6.py:
the schemas below are copied from SPEC §2.

A source is a directory with one file per table. By default every table is written
as Parquet with the SPEC types (so empty tables keep their types); a table can be
written as CSV instead (``csv={"interactions"}``), in which case every value is
written as text exactly as given (e.g. timestamps with UTC offsets).
"""
from __future__ import annotations

import atexit
import csv
import datetime as dt
import json
import os
import subprocess
import shutil
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]

# SPEC §2 column order and types.
SCHEMAS: dict[str, list[tuple[str, pa.DataType]]] = {
    "users": [
        ("user_id", pa.string()),
        ("signup_date", pa.date32()),
        ("segment", pa.string()),
        ("experiment_group", pa.string()),
    ],
    "interactions": [
        ("interaction_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("feature", pa.string()),
        ("domain", pa.string()),
        ("model_version", pa.string()),
        ("latency_ms", pa.float64()),
        ("verification_ms", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("confidence", pa.float64()),
        ("outcome", pa.string()),
    ],
    "adjudications": [
        ("interaction_id", pa.string()),
        ("tier", pa.int32()),
        ("hallucinated", pa.bool_()),
        ("ts", pa.timestamp("us")),
    ],
    "interventions": [
        ("intervention_id", pa.string()),
        ("interaction_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("kind", pa.string()),
        ("duration_s", pa.float64()),
    ],
    "user_activity": [
        ("user_id", pa.string()),
        ("activity_date", pa.date32()),
    ],
    "support_tickets": [
        ("ticket_id", pa.string()),
        ("user_id", pa.string()),
        ("created_ts", pa.timestamp("us")),
        ("resolved_ts", pa.timestamp("us")),
        ("escalated", pa.bool_()),
        ("handle_time_min", pa.float64()),
    ],
    "infra_costs": [
        ("date", pa.date32()),
        ("feature", pa.string()),
        ("cost_usd", pa.float64()),
    ],
}

REQUIRED_TABLES = ["users", "interactions", "adjudications", "interventions",
                   "user_activity", "support_tickets"]


def _coerce(value: Any, typ: pa.DataType) -> Any:
    """Turn the friendly literals used in tests into Python values for pyarrow."""
    if value is None:
        return None
    if pa.types.is_timestamp(typ) and isinstance(value, str):
        v = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if v.tzinfo is not None:  # store naive UTC
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return v
    if pa.types.is_date(typ) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def interaction(iid: str, ts: str, user_id: str, **kw: Any) -> dict:
    """An interaction row with harmless defaults (every column of SPEC §2)."""
    row = {
        "interaction_id": iid,
        "ts": ts,
        "user_id": user_id,
        "session_id": kw.pop("session_id", f"s-{iid}"),
        "feature": kw.pop("feature", "code_assistant"),
        "domain": kw.pop("domain", "code"),
        "model_version": kw.pop("model_version", "m1"),
        "latency_ms": kw.pop("latency_ms", 1000.0),
        "verification_ms": kw.pop("verification_ms", None),
        "input_tokens": kw.pop("input_tokens", 100),
        "output_tokens": kw.pop("output_tokens", 50),
        "cost_usd": kw.pop("cost_usd", 0.001),
        "confidence": kw.pop("confidence", 0.9),
        "outcome": kw.pop("outcome", "completed"),
    }
    if kw:
        raise TypeError(f"unknown interaction fields {sorted(kw)}")
    return row


def user(uid: str, segment: str = "pro", experiment_group: str | None = "treatment",
         signup_date: str = "2025-12-01") -> dict:
    return {"user_id": uid, "signup_date": signup_date, "segment": segment,
            "experiment_group": experiment_group}


def default_ticket(user_id: str) -> dict:
    return {"ticket_id": "t1", "user_id": user_id, "created_ts": "2026-01-02 10:00:00",
            "resolved_ts": "2026-01-02 11:00:00", "escalated": False,
            "handle_time_min": 12.0}


def write_table(directory: Path, table: str, rows: Iterable[Mapping[str, Any]],
                fmt: str = "parquet", schema: list[tuple[str, pa.DataType]] | None = None,
                ) -> Path:
    rows = list(rows)
    schema = schema if schema is not None else SCHEMAS[table]
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        path = directory / f"{table}.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([c for c, _ in schema])
            for r in rows:
                out = []
                for c, _ in schema:
                    v = r.get(c)
                    if v is None:
                        out.append("")
                    elif isinstance(v, bool):
                        out.append("true" if v else "false")
                    else:
                        out.append(str(v))
                w.writerow(out)
        return path
    path = directory / f"{table}.parquet"
    arrays = {}
    for c, typ in schema:
        arrays[c] = pa.array([_coerce(r.get(c), typ) for r in rows], type=typ)
    pq.write_table(pa.table(arrays, schema=pa.schema(schema)), path)
    return path


def write_source(directory: Path, tables: Mapping[str, Iterable[Mapping[str, Any]]],
                 csv: Iterable[str] = (), skip: Iterable[str] = ()) -> Path:
    """Write every table in ``tables``; required tables that are missing from
    ``tables`` are written empty (unless named in ``skip``); support_tickets gets one
    harmless row when not given."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv = set(csv)
    skip = set(skip)
    tables = dict(tables)
    if "support_tickets" not in tables and "support_tickets" not in skip:
        first_user = next(iter(tables.get("users", [])), {"user_id": "u0"})["user_id"]
        tables["support_tickets"] = [default_ticket(first_user)]
    for t in REQUIRED_TABLES:
        tables.setdefault(t, [])
    for t, rows in tables.items():
        if t in skip:
            continue
        write_table(directory, t, rows, fmt="csv" if t in csv else "parquet")
    return directory


def cli(*args: str, env_extra: Mapping[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m pipelines ARGS`` from the repo root."""
    env = dict(os.environ)
    env.pop("KPI_BRIDGE_DB", None)
    if env_extra:
        env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_source(source: Path, db: Path, env_extra: Mapping[str, str] | None = None,
               expect: int | None = 0) -> subprocess.CompletedProcess:
    p = cli("run", "--source", source, "--db", db, env_extra=env_extra)
    if expect is not None:
        assert p.returncode == expect, (
            f"run exit {p.returncode} (expected {expect})\nSTDOUT:\n{p.stdout}\n"
            f"STDERR:\n{p.stderr}")
    return p


def l6_json(db: Path, by: str, feature: str | None = None, domain: str | None = None,
            env_extra: Mapping[str, str] | None = None) -> list[dict]:
    args = ["l6", "--db", db, "--by", by, "--format", "json"]
    if feature is not None:
        args += ["--feature", feature]
    if domain is not None:
        args += ["--domain", domain]
    p = cli(*args, env_extra=env_extra)
    assert p.returncode == 0, f"l6 exit {p.returncode}\nSTDOUT:\n{p.stdout}\nSTDERR:\n{p.stderr}"
    return json.loads(p.stdout)


L6_KEYS = {"period_start", "tcr", "hr", "tta_p50_s", "tta_p90_s", "hitl_per_100",
           "retention_delta_pts", "cpvo_usd", "interactions"}


def by_period(rows: list[dict]) -> dict[str, dict]:
    for r in rows:
        assert set(r) == L6_KEYS, f"l6 JSON keys {sorted(r)} != {sorted(L6_KEYS)}"
    out = {r["period_start"]: r for r in rows}
    assert len(out) == len(rows), "duplicate period_start"
    return out


# --------------------------------------------------------------------------------
# Background work. A `run` costs several CPU-seconds (the gates import Great
# Expectations), so the test modules start their runs, the demo build and the CLI
# queries at import time (= pytest collection) and only wait for them inside the
# tests: everything overlaps and the whole set stays fast.
# --------------------------------------------------------------------------------
_POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("KPI_TEST_WORKERS", "6")),
                           thread_name_prefix="kpi-test")
_TMPDIRS: list[str] = []


def _cleanup() -> None:
    _POOL.shutdown(wait=True, cancel_futures=True)
    for d in _TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def scratch_dir(prefix: str) -> Path:
    """A temporary directory removed when the test process exits."""
    d = tempfile.mkdtemp(prefix=f"kpi_{prefix}_")
    _TMPDIRS.append(d)
    return Path(d)


def background(*args: str, env_extra: Mapping[str, str] | None = None,
               timeout: float = 600) -> Future:
    """Start `python -m pipelines ARGS` now; .result() is the CompletedProcess."""
    return _POOL.submit(cli, *args, env_extra=env_extra, timeout=timeout)


def _l6_args(db, by, feature=None, domain=None):
    args = ["l6", "--db", db, "--by", by, "--format", "json"]
    if feature is not None:
        args += ["--feature", feature]
    if domain is not None:
        args += ["--domain", domain]
    return args


class Prepared:
    """A source ingested in the background, then queried with `l6` in the background.

    queries: iterable of (by, feature, domain) to prefetch once the run is done."""

    def __init__(self, source: Path, db: Path, queries: Iterable[tuple] = (),
                 env_extra: Mapping[str, str] | None = None):
        self.source, self.db, self.env_extra = Path(source), Path(db), env_extra
        queries = [tuple(q) + (None,) * (3 - len(q)) for q in queries]

        def chain():
            p = cli("run", "--source", self.source, "--db", self.db, env_extra=env_extra)
            futs = {}
            if p.returncode == 0:
                futs = {q: _POOL.submit(cli, *_l6_args(self.db, *q), env_extra=env_extra)
                        for q in queries}
            return p, futs

        self._chain = _POOL.submit(chain)

    def run_proc(self) -> subprocess.CompletedProcess:
        return self._chain.result()[0]

    def check_run(self, expect: int = 0) -> "Prepared":
        p = self.run_proc()
        assert p.returncode == expect, (
            f"run exit {p.returncode} (expected {expect})\nSTDOUT:\n{p.stdout}\n"
            f"STDERR:\n{p.stderr}")
        return self

    def l6(self, by: str, feature: str | None = None, domain: str | None = None) -> list[dict]:
        self.check_run(0)
        fut = self._chain.result()[1].get((by, feature, domain))
        p = fut.result() if fut is not None else cli(*_l6_args(self.db, by, feature, domain),
                                                     env_extra=self.env_extra)
        assert p.returncode == 0, f"l6 exit {p.returncode}\nSTDOUT:\n{p.stdout}\nSTDERR:\n{p.stderr}"
        return json.loads(p.stdout)
