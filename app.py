"""KPI Bridge dashboard.

    streamlit run app.py --server.address 127.0.0.1 --browser.gatherUsageStats false [-- --db PATH]

The warehouse is $KPI_BRIDGE_DB, or `--db PATH` after `--`, or data/warehouse.duckdb.
On first start without a warehouse the demo warehouse is built (the same as
`python -m pipelines demo`) with a progress bar, then the pages are shown.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import streamlit as st  # noqa: E402


def _db_from_argv() -> None:
    """`streamlit run app.py -- --db PATH` sets the warehouse for this process."""
    if "--db" not in sys.argv and not any(a.startswith("--db=") for a in sys.argv):
        return
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    args, _ = parser.parse_known_args(sys.argv[1:])
    if args.db:
        os.environ["KPI_BRIDGE_DB"] = str(Path(args.db).resolve())


_db_from_argv()
st.set_page_config(page_title="KPI Bridge", page_icon=":material/monitoring:", layout="wide")

from pages import ui  # noqa: E402
from pipelines import data_access as da  # noqa: E402



@st.cache_resource(show_spinner=False)
def _server_log() -> logging.Logger:
    """The app's logger, given its handler once per server process: the server log says
    when the cache warm-up is done and what it took."""
    logger = logging.getLogger("kpi_bridge.app")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


log = _server_log()


@st.cache_resource
def _build_lock() -> threading.Lock:
    return threading.Lock()


def build_demo(db: Path) -> None:
    """Generate demo telemetry and run every stage into `db`, showing progress."""
    from pipelines import config, runner

    users = int(os.environ.get("KPI_BRIDGE_DEMO_USERS") or config.pipeline()["demo"]["users"])
    st.title("KPI Bridge")
    st.info(f"No warehouse at `{db}` yet: building the demo warehouse ({users:,} synthetic users, "
            "planted effects). This takes under a minute, the first time only.", icon=":material/construction:")
    bar = st.progress(0.0, text="Waiting for another session's build…")
    with _build_lock():
        if db.exists():
            return
        state: dict = {"error": None, "step": "generate"}

        def work() -> None:
            try:
                result, _ = runner.build_demo(db, users=users, on_step=lambda step: state.update(step=step))
                state["status"] = result.status
            except Exception as exc:  # shown in words below, logged with its traceback
                state["error"] = exc
                log.error("demo build failed:\n%s%s", traceback.format_exc(), getattr(exc, "details", ""))
            state["step"] = "done"

        t = threading.Thread(target=work, daemon=True)
        t.start()
        t0, progress = time.time(), 0.0
        while t.is_alive():
            elapsed = time.time() - t0
            if state["step"] == "generate":
                progress = min(0.45, progress + 0.01)
                text = f"Generating synthetic telemetry… ({elapsed:.0f} s)"
            else:
                progress = min(0.95, max(progress, 0.5) + 0.01)
                text = f"Ingesting, staging and computing the L6 metrics… ({elapsed:.0f} s)"
            bar.progress(progress, text=text)
            time.sleep(0.4)
        t.join()
    if state["error"] is not None:
        bar.progress(1.0, text="The demo build failed")
        st.error(f"The demo warehouse could not be built: {state['error']}. Build it from a shell with "
                 f"`python -m pipelines demo --db {db}` to see the details.", icon=":material/error:")
        st.stop()
    bar.progress(1.0, text="Done: opening the dashboard")


@st.cache_resource(show_spinner=False)
def _warm_up(db: str, stamp: int) -> threading.Thread:
    """Once per warehouse version and server process: fill the caches in the background so
    the first visitor does not wait for the cold queries (data_access.warm_up)."""
    def work() -> None:
        try:
            log.info("cache warm-up: %s", da.warm_up(db=db))
        except Exception as exc:  # the pages explain their own problems; the log says this one
            log.warning("cache warm-up failed: %s: %s", type(exc).__name__, exc)

    t = threading.Thread(target=work, daemon=True, name="kpi-bridge-warm-up")
    t.start()
    return t


def run_banner() -> None:
    """On every page: the latest run did not succeed → say what failed and what is shown."""
    try:
        b = da.run_banner()
    except da.WarehouseUnavailable:
        return
    if not b:
        return
    what = ("failed its critical gate at stage" if b["status"] == "gate_failed" else "stopped with an error at stage")
    shown = (f"The dashboard shows the last good results (run `{b['good_run_id']}`, finished {str(b['good_finished_at'])[:16]} UTC)."
             if b["good_run_id"] else "There are no earlier good results to show.")
    st.error(f"**The latest run `{b['run_id']}` {what} `{b['failed_stage'] or '?'}`.** {b['message']}  \n{shown} "
             "See **Data quality** for the failing expectations.", icon=":material/gpp_bad:")


PAGES = [
    ("pages/home.py", "Home", ":material/home:", None),
    ("pages/qbr.py", "QBR", ":material/summarize:", "qbr"),
    ("pages/explore.py", "Explore", ":material/query_stats:", "explore"),
    ("pages/bridge.py", "Bridge", ":material/account_tree:", "bridge"),
    ("pages/data_quality.py", "Data quality", ":material/fact_check:", "data_quality"),
    ("pages/definitions.py", "Definitions", ":material/menu_book:", "definitions"),
    ("pages/audit.py", "Audit", ":material/verified:", "audit"),
]


def main() -> None:
    pages = [st.Page(path, title=title, icon=icon, url_path=url, default=url is None)
             for path, title, icon, url in PAGES]
    db = da.db_path()
    if not db.exists():
        # declare the navigation first, hidden: without it Streamlit would list every file
        # of pages/ (helpers included) in the sidebar while the demo builds
        st.navigation(pages, position="hidden")
        build_demo(db)
        da.clear_caches()
        st.rerun()

    if not os.environ.get("KPI_BRIDGE_NO_WARMUP"):
        _warm_up(str(db), db.stat().st_mtime_ns)
    page = st.navigation(pages)
    with st.sidebar:
        try:
            info = da.warehouse_info()
            window = (f"{info['first_date']} → {info['last_date']}" if info["last_date"] else "no data")
            st.caption(f"Warehouse `{Path(info['path']).name}` · data {window} · "
                       f"{info['interactions']:,} interactions")
        except da.WarehouseUnavailable as exc:
            st.caption(str(exc))
    run_banner()
    ui.table_style()
    try:
        with ui.page_run_by_app():
            page.run()
    except da.WarehouseUnavailable as exc:
        st.warning(str(exc), icon=":material/warning:")
    except Exception as exc:  # words, not tracebacks (the traceback goes to the server log)
        if os.environ.get("KPI_BRIDGE_DEBUG"):
            raise
        log.error("page %s failed:\n%s", page.title, traceback.format_exc())
        st.error(f"This page hit an unexpected problem and could not be drawn: {type(exc).__name__}: "
                 f"{str(exc).splitlines()[0] if str(exc) else ''}. The other pages still work; the details are "
                 "in the server log.", icon=":material/error:")


main()
