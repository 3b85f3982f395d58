"""`python -m pipelines.perf --db PATH`: measure the dashboard against its budgets; print JSON.

Budgets (issue: the product as its users meet it), on a 10M-interaction warehouse:
  * each page's server-side work <= 500 ms with a warm cache;
  * any page's first load in the browser <= 3 s;
  * a filter change on Explore <= 1 s until the chart is redrawn.

How each is measured:
  * server side: Streamlit's AppTest runs the page script in-process against the
    warehouse (the same code the server runs, no browser): one cold run fills the
    cache, then `--repeat` warm runs; the median and max of the warm runs are reported
    (the cold run too, and a cold filter change on Explore: a cache miss).
  * browser: `streamlit run app.py` on a free 127.0.0.1 port, Debian's chromium
    (/usr/bin/chromium) driven by Playwright. After one visit warms the server cache,
    each page is opened in a new browser session twice: with an empty browser cache
    (a first visit) and with the HTTP cache of an earlier visit, once the app's cache
    warm-up (started by the first visit) is done. Times run from
    navigation to (a) content ready: a title, no running indicator, and (b) the
    page's main chart drawn.
  * filter change: on Explore (warm page), the time from a click (period grain, then
    a feature filter) until the chart shows the new view and the app is idle.
  * floor: the same first-load timing for the least Streamlit app with one Plotly chart
    (a title and a 3-point line), on the same machine and browser: the part of the budget
    that Streamlit's and Plotly's own JavaScript take, which no page can go under.
  * `--widgets` (no warehouse): the floor app with one widget of each kind (a dropdown, a
    grid, toggle buttons, ...) against the floor itself, the kinds interleaved: what a widget
    in a page's first view adds to its first load (the pages keep the heavy ones on demand).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pipelines.bench import machine_reference

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"home": ("pages/home.py", ""), "qbr": ("pages/qbr.py", "qbr"), "explore": ("pages/explore.py", "explore"),
         "bridge": ("pages/bridge.py", "bridge"), "data_quality": ("pages/data_quality.py", "data_quality"),
         "definitions": ("pages/definitions.py", "definitions"), "audit": ("pages/audit.py", "audit")}
BUDGETS = {"server_side_warm_ms": 500, "browser_first_load_s": 3.0, "explore_filter_change_s": 1.0}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STATUS_GONE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
CHART = '[data-testid="stPlotlyChart"] .main-svg'


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# server side (AppTest)
# --------------------------------------------------------------------------------------
def server_side(db: Path, repeat: int) -> dict:
    os.environ["KPI_BRIDGE_DB"] = str(db)
    os.environ["KPI_BRIDGE_DEBUG"] = "1"
    os.environ["KPI_BRIDGE_NO_WARMUP"] = "1"  # cold numbers stay cold
    from streamlit.testing.v1 import AppTest

    out = {}
    for name, (script, _) in PAGES.items():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        t0 = time.perf_counter()
        at.run()  # the entrypoint + Home
        if name != "home":
            at.switch_page(script)
            t0 = time.perf_counter()
            at.run()
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t0)
        errors = [str(e.value) for e in at.exception]
        out[name] = {"cold_ms": round(cold * 1000), "warm_median_ms": round(statistics.median(warm) * 1000),
                     "warm_max_ms": round(max(warm) * 1000), "errors": errors}
        _log(f"[server] {name}: cold {cold * 1000:.0f} ms, warm median {statistics.median(warm) * 1000:.0f} ms")
    # a filter change on Explore that misses the cache (a new slice)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page(PAGES["explore"][0])
    at.run()
    changes = {}
    # the Feature filter: toggle buttons, or a dropdown when the slice has many values
    feature = next(iter([w for w in at.pills if w.key == "feature"] + [w for w in at.multiselect if w.key == "feature"]))
    if feature.options:
        t0 = time.perf_counter()
        feature.set_value([feature.options[0]]).run()
        changes["feature_cold_ms"] = round((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    at.segmented_control(key="grain").set_value("month").run()
    changes["grain_month_cold_ms"] = round((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    at.segmented_control(key="grain").set_value("week").run()
    changes["grain_back_warm_ms"] = round((time.perf_counter() - t0) * 1000)
    _log(f"[server] explore filter changes: {changes}")
    return {"pages": out, "explore_filter_change": changes}


# --------------------------------------------------------------------------------------
# browser (streamlit run + chromium)
# --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, log_path: Path, app: Path = ROOT / "app.py") -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` (or `app`) on a free localhost port over `db`; (process, url) once healthy."""
    port = _free_port()
    env = {**os.environ, "KPI_BRIDGE_DB": str(db)}
    env.pop("KPI_BRIDGE_DEBUG", None)
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early; see {log_path}:\n{Path(log_path).read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"streamlit did not start; see {log_path}")


def _load(ctx, url: str, expect_chart: bool) -> dict:
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("h1", timeout=120_000)
    page.wait_for_timeout(50)
    page.wait_for_function(STATUS_GONE, timeout=120_000)
    ready = time.perf_counter() - t0
    drawn = None
    if expect_chart:
        try:
            page.wait_for_selector(CHART, timeout=30_000)
            drawn = time.perf_counter() - t0
        except Exception:  # a page that has no chart to draw (e.g. it explains a missing module)
            drawn = None
    page.close()
    return {"content_ready_s": round(ready, 2), "chart_drawn_s": None if drawn is None else round(drawn, 2)}


def _wait_for_warm_up(proc: subprocess.Popen, log_path: Path, since: float, timeout: float = 600) -> float | str:
    """Seconds from `since` until the server log says the cache warm-up is done (or failed:
    then the log line), or why it was not waited for."""
    if os.environ.get("KPI_BRIDGE_NO_WARMUP"):
        return "not waited for: KPI_BRIDGE_NO_WARMUP is set"
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = Path(log_path).read_text(errors="replace")
        if "cache warm-up failed:" in text:
            return next(ln for ln in text.splitlines() if "cache warm-up failed:" in ln)
        if "cache warm-up:" in text:
            return round(time.perf_counter() - since, 1)
        if proc.poll() is not None:
            return "the server stopped before its warm-up finished"
        time.sleep(0.5)
    return f"not done within {timeout:.0f} s"


def _wait_chart_title(page, text: str) -> None:
    page.wait_for_function(
        """t => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .gtitle')].some(e => e.textContent.includes(t))""",
        arg=text, timeout=120_000)


FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st
st.title("Floor")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])))
"""


def floor(repeat: int) -> dict:
    """What this machine and browser need for the least Streamlit page with one Plotly chart
    (a title and a 3-point line): the part of the 3 s budget no page of ours can go under."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="kpi_bridge_floor_"))
    (work / "floor.py").write_text(FLOOR_APP)
    proc, url = start_server(Path(os.devnull), work / "streamlit.log", app=work / "floor.py")
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            runs = []
            for _ in range(repeat + 1):
                ctx = b.new_context(viewport={"width": 1600, "height": 1000})
                runs.append(_load(ctx, url, True))
                ctx.close()
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    runs = runs[1:]  # the first visit also warms the server
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in ("content_ready_s", "chart_drawn_s")}


# one widget of each kind a page might hold in its first view, on the floor app (a title and
# a 3-point chart): what each adds to the first load, measured against the floor in the same
# browser, the kinds interleaved so that the machine's swings fall on all of them alike
WIDGET_APP = """import datetime as dt
import plotly.graph_objects as go
import polars as pl
import streamlit as st
kind = st.query_params.get("kind", "floor")
st.title("Widget " + kind)
opts = ["2026Q1", "2026Q2", "2026Q3"]
if kind == "selectbox":
    st.selectbox("Quarter", opts)
elif kind == "multiselect":
    st.multiselect("Quarter", opts)
elif kind == "segmented_control":
    st.segmented_control("Quarter", opts, default=opts[0])
elif kind == "pills":
    st.pills("Quarter", opts, selection_mode="multi")
elif kind == "radio":
    st.radio("Quarter", opts, horizontal=True)
elif kind == "toggle":
    st.toggle("On")
elif kind == "slider":
    st.slider("Move", 0.0, 1.0, 0.5)
elif kind == "text_input":
    st.text_input("Name")
elif kind == "date_input":
    st.date_input("From", dt.date(2026, 1, 1))
elif kind == "dataframe":
    st.dataframe(pl.DataFrame({"a": list(range(20)), "b": [str(x) for x in range(20)]}))
elif kind == "markdown_table":
    st.markdown("| a | b |\\n|---|---|\\n" + "\\n".join(f"| {i} | {i} |" for i in range(20)))
elif kind == "code":
    st.code("select * from final", language="sql")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])), theme=None)
"""
WIDGET_KINDS = ["floor", "selectbox", "multiselect", "segmented_control", "pills", "radio", "toggle", "slider",
                "text_input", "date_input", "dataframe", "markdown_table", "code"]


def widget_costs(repeat: int) -> dict:
    """First load (empty browser cache, until the chart is drawn) of the floor app with one
    widget of each kind: the median per kind and its excess over the floor's median."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="kpi_bridge_widgets_"))
    (work / "widgets.py").write_text(WIDGET_APP)
    proc, url = start_server(Path(os.devnull), work / "streamlit.log", app=work / "widgets.py")
    runs: dict[str, list[float]] = {k: [] for k in WIDGET_KINDS}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for kind in WIDGET_KINDS:  # a first visit of each warms the server
                ctx = b.new_context()
                _load(ctx, f"{url}/?kind={kind}", True)
                ctx.close()
            for _ in range(repeat):
                for kind in WIDGET_KINDS:
                    ctx = b.new_context(viewport={"width": 1600, "height": 1000})
                    try:
                        drawn = _load(ctx, f"{url}/?kind={kind}", True)["chart_drawn_s"]
                    except Exception as exc:  # one failed load: left out and said, not the whole run lost
                        _log(f"[widgets] {kind}: {str(exc).splitlines()[0]}")
                        drawn = None
                    ctx.close()
                    if drawn is not None:
                        runs[kind].append(drawn)
                _log(f"[widgets] round {_ + 1} of {repeat} done")
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    base = statistics.median(runs["floor"])
    return {k: {"chart_drawn_median_s": round(statistics.median(v), 2),
                "over_floor_s": round(statistics.median(v) - base, 2), "runs_s": v}
            for k, v in runs.items() if v}


def browser(db: Path, repeat: int, pages: list[str] | None = None) -> dict:
    if not Path(CHROMIUM).exists():
        return {"error": f"{CHROMIUM} is missing (apt-get install chromium)"}
    from playwright.sync_api import sync_playwright

    log_path = Path(tempfile.gettempdir()) / "kpi_bridge_perf_streamlit.log"
    proc, url = start_server(db, log_path)
    out: dict = {"pages": {}, "explore_filter_change": {}}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            warm_ctx = b.new_context(viewport={"width": 1600, "height": 1000})
            has_chart = {}
            chosen = {k: v for k, v in PAGES.items() if not pages or k in pages}
            t_visit = time.perf_counter()
            for name, (_, path) in chosen.items():  # warm the server cache and the HTTP cache
                has_chart[name] = _load(warm_ctx, f"{url}/{path}", True)["chart_drawn_s"] is not None
            # the first visit started the app's cache warm-up (a background thread that keeps
            # both cores busy for tens of seconds on 10M interactions): the timings below are
            # of a server that has finished it, as a visitor arriving later meets it
            out["server_warm_up_done_s"] = _wait_for_warm_up(proc, log_path, t_visit)
            for name, (_, path) in chosen.items():
                cold_runs, warm_runs = [], []
                for _ in range(repeat):
                    ctx = b.new_context(viewport={"width": 1600, "height": 1000})
                    cold_runs.append(_load(ctx, f"{url}/{path}", has_chart[name]))
                    ctx.close()
                    warm_runs.append(_load(warm_ctx, f"{url}/{path}", has_chart[name]))

                def med(runs, key):
                    vals = [r[key] for r in runs if r[key] is not None]
                    return round(statistics.median(vals), 2) if vals else None

                out["pages"][name] = {
                    "empty_browser_cache": {"content_ready_s": med(cold_runs, "content_ready_s"),
                                            "chart_drawn_s": med(cold_runs, "chart_drawn_s")},
                    "warm_browser_cache": {"content_ready_s": med(warm_runs, "content_ready_s"),
                                           "chart_drawn_s": med(warm_runs, "chart_drawn_s")}}
                _log(f"[browser] {name}: {out['pages'][name]}")
            # filter changes on Explore
            page = warm_ctx.new_page()
            page.goto(f"{url}/explore", wait_until="domcontentloaded")
            page.wait_for_selector(CHART, timeout=120_000)
            page.wait_for_function(STATUS_GONE, timeout=120_000)
            grain_times, feature_times = [], []
            for target in ["month", "week", "quarter", "week"][: max(2, repeat + 1)]:
                t0 = time.perf_counter()
                page.locator('[data-testid="stButtonGroup"] button', has_text=target).first.click()
                _wait_chart_title(page, {"month": "by month", "week": "by ISO week", "quarter": "by quarter"}[target])
                page.wait_for_function(STATUS_GONE, timeout=120_000)
                grain_times.append(time.perf_counter() - t0)
            try:  # the first Feature button (toggle buttons; a dropdown when a slice has many values)
                group = page.locator('[data-testid="stButtonGroup"]').filter(
                    has=page.locator('[data-testid="stWidgetLabel"]', has_text="Feature"))
                option = group.first.locator("button").first
                label = option.inner_text().strip()
                t0 = time.perf_counter()
                option.click()
                page.wait_for_function(
                    """t => document.querySelector('[data-testid="stMain"]').innerText.includes('Feature: ' + t)""",
                    arg=label, timeout=120_000)
                page.wait_for_function(STATUS_GONE, timeout=120_000)
                page.wait_for_selector(CHART, timeout=120_000)
                feature_times.append(time.perf_counter() - t0)
            except Exception as exc:  # the widget layout changed: report, do not fail the run
                out["explore_filter_change"]["feature_error"] = str(exc).splitlines()[0]
            out["explore_filter_change"]["grain_s"] = [round(t, 2) for t in grain_times]
            out["explore_filter_change"]["grain_median_s"] = round(statistics.median(grain_times), 2)
            if feature_times:
                out["explore_filter_change"]["feature_s"] = round(feature_times[0], 2)
            page.close()
            warm_ctx.close()
            b.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def _interactions(db: Path) -> int | None:
    from pipelines import warehouse

    try:
        con = warehouse.connect(db, read_only=True)
        n = con.execute("select count(*) from int_interactions").fetchall()[0][0]
        con.close()
        return int(n)
    except Exception:
        return None


def verdict(result: dict) -> dict:
    v = {}
    ss = result.get("server_side", {}).get("pages", {})
    if ss:
        worst = max(p["warm_median_ms"] for p in ss.values())
        v["server_side_warm_ms"] = {"worst_page_median": worst, "budget": BUDGETS["server_side_warm_ms"],
                                    "pass": worst <= BUDGETS["server_side_warm_ms"]}
    br = result.get("browser", {}).get("pages", {})
    if br:
        def worst(kind, key):
            vals = [p[kind][key] for p in br.values() if p[kind][key] is not None]
            return max(vals) if vals else None
        for kind in ("warm_browser_cache", "empty_browser_cache"):
            for key in ("content_ready_s", "chart_drawn_s"):
                w = worst(kind, key)
                v[f"browser_first_load_{kind}_{key}"] = {"worst_page": w, "budget": BUDGETS["browser_first_load_s"],
                                                         "pass": w is not None and w <= BUDGETS["browser_first_load_s"]}
    fc = result.get("browser", {}).get("explore_filter_change", {})
    if fc.get("grain_median_s") is not None:
        worst_change = max([fc["grain_median_s"]] + ([fc["feature_s"]] if "feature_s" in fc else []))
        v["explore_filter_change_s"] = {"worst": worst_change, "budget": BUDGETS["explore_filter_change_s"],
                                        "pass": worst_change <= BUDGETS["explore_filter_change_s"]}
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.perf", description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, help="the warehouse to measure (e.g. a 10M-interaction one)")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs / browser loads per page (default 3)")
    ap.add_argument("--no-browser", action="store_true", help="server-side timings only")
    ap.add_argument("--browser-only", action="store_true", help="browser timings only (skip the server side)")
    ap.add_argument("--pages", nargs="*", choices=list(PAGES), help="browser: only these pages (default: all)")
    ap.add_argument("--widgets", action="store_true",
                    help="instead: what one widget of each kind adds to the first load of the floor app "
                         "(no warehouse needed; --repeat rounds, 7 or more for a steady median)")
    args = ap.parse_args(argv)
    if args.widgets:
        if not Path(CHROMIUM).exists():
            print(f"error: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
            return 2
        print(json.dumps({"widget_first_load": widget_costs(args.repeat), "machine": machine_reference()}, indent=1))
        return 0
    if args.db is None:
        ap.error("--db is required (or --widgets)")
    db = args.db.resolve()
    if not db.exists():
        print(f"error: warehouse {db} does not exist; build one with `python -m pipelines demo --db {db}`",
              file=sys.stderr)
        return 2
    result: dict = {"db": str(db), "interactions": _interactions(db), "budgets": BUDGETS,
                    "machine": machine_reference()}
    t0 = time.perf_counter()
    # server side in a child process: its caches and memory stay out of the browser run
    code = ("import json,sys; from pipelines import perf; "
            f"print(json.dumps(perf.server_side(__import__('pathlib').Path({str(db)!r}), {args.repeat})))")
    proc = (subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
            if not args.browser_only else None)
    if proc is None:
        result["server_side"] = {"skipped": "--browser-only"}
    elif proc.returncode != 0:
        result["server_side"] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    else:
        sys.stderr.write("\n".join(ln for ln in proc.stderr.splitlines() if ln.startswith("[server]")) + "\n")
        result["server_side"] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not args.no_browser:
        result["browser"] = browser(db, args.repeat, args.pages)
        if "error" not in result["browser"]:
            result["browser"]["floor_empty_browser_cache"] = floor(args.repeat)
        _log(f"[browser] floor (an empty app with one 3-point Plotly chart): "
             f"{result['browser'].get('floor_empty_browser_cache')}")
    result["verdict"] = verdict(result)
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
