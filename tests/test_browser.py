"""Real-browser test: Streamlit on a free localhost port, Debian's chromium driven by
Playwright; every page loads, its main chart is drawn, no error element; screenshots go to
tests/artifacts/. Required in CI: a missing /usr/bin/chromium fails the test."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STATUS_GONE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
CHART = '[data-testid="stPlotlyChart"] .main-svg'
# url path, screenshot name, what proves the page is drawn (a chart, or the words that explain why not)
PAGES = [("", "home"), ("qbr", "qbr"), ("explore", "explore"), ("bridge", "bridge"),
         ("data_quality", "data_quality"), ("definitions", "definitions"), ("audit", "audit")]


def start_streamlit(db: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    from pipelines.perf import start_server  # the same start as the perf script's

    return start_server(db, log_path)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(demo_db):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, url = start_streamlit(demo_db, ARTIFACTS / "streamlit.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium); "
                    "the browser tests are required and never download a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def settle(page, timeout: float = 60_000) -> None:
    """Wait for the app shell, a title, and then for the running indicator to be gone."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_selector("h1", timeout=timeout)
    page.wait_for_timeout(200)
    page.wait_for_function(STATUS_GONE, timeout=timeout)


def snap(page, name: str) -> None:
    """A screenshot of the whole app: grow the viewport to the scrolled content first."""
    h = page.evaluate("""() => Math.max(document.body.scrollHeight,
        ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], [data-testid="stMainBlockContainer"]')]
            .map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": 1600, "height": int(min(max(h + 40, 1000), 12000))})
    page.wait_for_timeout(700)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def chart_title_has(page, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        """t => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .gtitle')].some(e => e.textContent.includes(t))""",
        arg=text, timeout=timeout)


def assert_no_error(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, "a traceback is shown"
    errors = page.locator('[data-testid="stAlertContentError"]')
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    # the overdue-audit reminder is red by design (the demo's audit is never signed): not a page error
    assert [t for t in texts if "audit is overdue" not in t and "sign-off is overdue" not in t] == [], texts


TITLES = {"home": "KPI Bridge — L6 scorecard", "qbr": "Quarterly business review", "explore": "Explore the L6 metrics",
          "bridge": "KPI bridge: AI metrics → dollars", "data_quality": "Data quality",
          "definitions": "Metric definitions", "audit": "Metric audit (every 8 weeks)"}
NAV = {"home": "Home", "qbr": "QBR", "explore": "Explore", "bridge": "Bridge", "data_quality": "Data quality",
       "definitions": "Definitions", "audit": "Audit"}


def open_app(page, server: str) -> None:
    """A test run alone starts on a blank page: open the app so its sidebar is there."""
    if not page.url.startswith(server):
        page.goto(server, wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=60_000)


@pytest.fixture(scope="module")
def session(server, browser):
    """One browser session, as a user has: the first page by URL, the others from the sidebar."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    yield page
    ctx.close()


@pytest.mark.parametrize("path,name", PAGES)
def test_page_in_browser(server, session, path, name):
    page = session
    page.set_viewport_size({"width": 1600, "height": 1000})
    t0 = time.perf_counter()
    if name == "home":
        page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    else:
        open_app(page, server)
        page.locator('[data-testid="stSidebarNav"] a', has_text=NAV[name]).first.click()
    page.wait_for_function("t => [...document.querySelectorAll('h1')].some(h => h.textContent.includes(t))",
                           arg=TITLES[name], timeout=60_000)
    settle(page)
    page.wait_for_selector(CHART, timeout=30_000)
    chart_title_has(page, "")  # a drawn chart carries its title
    elapsed = time.perf_counter() - t0
    assert f"/{path}" in page.url
    assert_no_error(page)
    snap(page, name)
    assert elapsed < 30, f"{name} took {elapsed:.1f}s to draw"


def fresh_page(browser, url: str, width: int = 1600):
    """A new browser session opened at `url`, its run settled and its chart drawn: (context, page)."""
    ctx = browser.new_context(viewport={"width": width, "height": 1000})
    page = ctx.new_page()
    page.goto(url, wait_until="domcontentloaded")
    settle(page)
    page.wait_for_selector(CHART, timeout=30_000)
    return ctx, page


def test_explore_filter_change_and_shared_url(server, browser):
    ctx, page = fresh_page(browser, f"{server}/explore")
    main = page.locator('[data-testid="stMain"]')
    assert "by ISO week (Mon)" in main.inner_text()
    t0 = time.perf_counter()
    page.locator('[data-testid="stButtonGroup"] button', has_text="month").first.click()
    chart_title_has(page, "by month")
    redraw = time.perf_counter() - t0
    page.wait_for_function(STATUS_GONE, timeout=30_000)
    assert "grain=month" in page.url, page.url
    assert_no_error(page)
    shared = page.url
    snap(page, "explore_month")
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    page.goto(shared + "&domain=billing&compare=true&cmp_by=Segment", wait_until="domcontentloaded")
    settle(page)
    chart_title_has(page, "— Segment: ")  # "TCR, HR by month — Segment: enterprise vs free"
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "by month" in text and "Domain: billing" in text
    # two slices side by side, two metrics: one figure, four panels, each with its line drawn
    page.wait_for_function(
        """() => document.querySelectorAll('[data-testid="stPlotlyChart"] .cartesianlayer .subplot .scatterlayer .trace').length >= 4""",
        timeout=30_000)
    assert_no_error(page)
    snap(page, "explore_shared_compare")
    ctx.close()
    assert redraw < 10, f"the filter change took {redraw:.1f}s to redraw"


def test_explore_row_selection_opens_the_drill_down(server, browser, demo_db):
    """Selecting a row of the numbers table (a click in the grid's canvas, which AppTest cannot
    make) opens the drill-down on that row's period: its interactions, counted here with SQL."""
    import duckdb

    ctx, page = fresh_page(browser, f"{server}/explore?grain=month&numbers=true", width=1280)
    grids = page.locator('[data-testid="stDataFrame"]')
    assert grids.count() == 1  # the numbers' grid, opened by the link; the drill-down's is not built yet
    grid = grids.first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    # the second data row's selection box: the header row and each data row are 35 px high
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 + 17)
    page.wait_for_timeout(500)
    settle(page)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length == 2",
                           timeout=30_000)
    caption = next(c for c in page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
                   if "interactions · page" in c)
    con = duckdb.connect(str(demo_db), read_only=True)
    months = con.execute("select distinct date_trunc('month', activity_date)::date as m, count(*) over "
                         "(partition by date_trunc('month', activity_date)) from int_interactions order by 1").fetchall()
    con.close()
    second_month, n = months[1]
    assert caption.startswith(f"{n:,} interactions · page 1 of"), (caption, second_month)
    assert_no_error(page)
    snap(page, "explore_row_drill_down")
    ctx.close()


def test_qbr_pdf_one_click(server, session, demo_db):
    """The one-click export: the PDF downloads, opens and holds the quarter's scorecard."""
    import io

    from pypdf import PdfReader

    page = session
    page.set_viewport_size({"width": 1600, "height": 1000})
    open_app(page, server)
    page.locator('[data-testid="stSidebarNav"] a', has_text="QBR").first.click()
    page.wait_for_function("t => [...document.querySelectorAll('h1')].some(h => h.textContent.includes(t))",
                           arg=TITLES["qbr"], timeout=60_000)
    settle(page)
    import re

    quarter = re.search(r"L6 scorecard — (\d{4}Q\d)", page.inner_text('[data-testid="stMain"]')).group(1)
    with page.expect_download(timeout=120_000) as dl:
        page.get_by_role("button", name="Download the QBR as PDF").click()
    path = ARTIFACTS / "qbr.pdf"
    dl.value.save_as(str(path))
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    assert f"L6 scorecard {quarter}" in text, text[:300]
    assert "Task Completion Rate" in text and "Hallucination Rate" in text and "Summary" in text
    assert sum(len(p.images) for p in reader.pages) >= 2, "charts are embedded as images"
    from pipelines import data_access as da

    chains = [c["name"] for c in da.bridge_report(quarter, db=demo_db)["chains"]]
    assert len(chains) >= 5
    # every chain's diagram (the page's closed tabs included) is a page of its own with its image,
    # beside the weekly trend, the waterfall and HR by domain; each image carries its title
    assert sum(len(p.images) for p in reader.pages) == 3 + len(chains)
    assert "(chart image unavailable" not in text


def test_first_start_builds_the_demo(browser, tmp_path, monkeypatch):
    """The README's first command on a fresh machine: no warehouse yet, so the app builds the
    demo (a progress bar, the generation in a child process) and then shows Home. While it
    builds, the sidebar lists no file of pages/ (helpers included): only the real navigation."""
    monkeypatch.setenv("KPI_BRIDGE_DEMO_USERS", "1500")
    db = tmp_path / "data" / "warehouse.duckdb"
    proc, url = start_streamlit(db, tmp_path / "streamlit.log")
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stProgress"]', timeout=60_000)
        assert page.locator('[data-testid="stSidebarNav"] a').count() == 0, \
            page.locator('[data-testid="stSidebarNav"]').all_inner_texts()
        snap(page, "first_start_building")
        page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
        settle(page)
        assert_no_error(page)
        assert db.exists() and (db.parent / "warehouse.truths.json").exists()
        nav = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert [t.strip().splitlines()[-1] for t in nav] == list(NAV.values()), nav  # icon name, then title
        ctx.close()
    finally:
        stop(proc)
        log = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-2000:]


def test_shared_link_first_on_a_fresh_server(browser, demo_db, tmp_path):
    """A shared Explore link is the first request a freshly started server gets: Streamlit has
    not yet seen app.py declare the navigation and would run pages/explore.py by itself (its
    older pages-folder mode: every file of pages/ in the sidebar, helpers included, and none
    of app.py's sidebar, banners or guards). The page goes through app.py instead."""
    proc, url = start_streamlit(demo_db, tmp_path / "streamlit.log")
    try:
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{url}/explore?grain=month", wait_until="domcontentloaded")
        settle(page)
        page.wait_for_selector(CHART, timeout=30_000)
        chart_title_has(page, "by month")  # the link's state is kept
        nav = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert [t.strip().splitlines()[-1] for t in nav] == list(NAV.values()), nav
        assert "interactions" in page.locator('[data-testid="stSidebar"]').inner_text()  # app.py's caption
        assert "/explore" in page.url and "grain=month" in page.url
        assert_no_error(page)
        snap(page, "explore_shared_link_fresh_server")
        ctx.close()
        # a second visitor's first page is Data quality (its URL used to differ from its file
        # name: a "Page not found" dialog over the page)
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{url}/data_quality", wait_until="domcontentloaded")
        settle(page)
        page.wait_for_selector(CHART, timeout=30_000)
        assert "/data_quality" in page.url
        assert page.get_by_text("Page not found").count() == 0
        assert_no_error(page)
        ctx.close()
    finally:
        stop(proc)


def test_what_if_slider_reaches_its_ends(server, browser):
    """The TTA chain's what-if slider pressed to its left end (Home key) and its right end (End):
    both move the dollars (its lower bound used to sit off the step grid, the browser sent a
    value under the minimum, and the server ignored the slider)."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    try:
        page.goto(f"{server}/bridge?wi_chain=TTA+%E2%86%92+productivity+value", wait_until="domcontentloaded")
        settle(page)
        thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
        start = float(thumb.input_value())
        for key, bound in (("Home", "min"), ("End", "max")):
            thumb.focus()
            page.keyboard.press(key)
            page.wait_for_timeout(300)
            settle(page)
            want = float(thumb.get_attribute(bound))
            assert float(thumb.input_value()) == pytest.approx(want)
            assert abs(want - start) > 3.9  # ± 4 s
            chart_title_has(page, f"→ {want:.1f} s")  # the server took the slider's value
            body = page.locator('[data-testid="stMain"]').inner_text()
            assert "Move the slider" not in body, key
            moved = page.locator('[data-testid="stMetric"]', has_text="Dollars moved").inner_text().split("\n")
            assert moved[-1].strip() not in ("$0", "+$0", "−$0"), (key, moved)
        assert_no_error(page)
    finally:
        ctx.close()
