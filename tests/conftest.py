"""Shared fixtures: a small demo warehouse and an empty warehouse, each built once per session."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEMO_USERS = 3000


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The demo warehouse (3,000 users, the default seed), as `python -m pipelines demo` builds it."""
    from pipelines import demo_data, runner

    root = tmp_path_factory.mktemp("demo_wh")
    db = root / "demo.duckdb"
    demo_data.generate(root / "source", users=DEMO_USERS)
    result = runner.run(root / "source", db, command="demo")  # its audit stage records one audit
    assert result.status == "success", result.message
    return db


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """A warehouse built from a source whose tables hold no rows."""
    from pipelines import runner
    from helpers_source import write_source

    root = tmp_path_factory.mktemp("empty_wh")
    src = write_source(root / "source", {"support_tickets": []})
    db = root / "empty.duckdb"
    result = runner.run(src, db, command="run", gates=False)
    assert result.status == "success", result.message
    return db


@pytest.fixture
def app_env(monkeypatch):
    """Point the app at a warehouse and let page exceptions surface in AppTest."""
    def use(db: Path) -> None:
        monkeypatch.setenv("KPI_BRIDGE_DB", str(db))
        monkeypatch.setenv("KPI_BRIDGE_DEBUG", "1")
        monkeypatch.setenv("KPI_BRIDGE_NO_WARMUP", "1")  # tests/test_app_pages.py calls warm_up itself
    return use


def cli_l6(db: Path, by: str, feature: str | None = None, domain: str | None = None) -> list[dict]:
    """`python -m pipelines l6 ... --format json` rows."""
    args = [sys.executable, "-m", "pipelines", "l6", "--db", str(db), "--by", by, "--format", "json"]
    if feature:
        args += ["--feature", feature]
    if domain:
        args += ["--domain", domain]
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KPI_BRIDGE_DEBUG": ""})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
