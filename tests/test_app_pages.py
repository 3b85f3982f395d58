"""AppTest for every page: renders on the demo and on an empty warehouse; widgets change the
numbers, and the numbers match `python -m pipelines l6` on the same slice."""
from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import shutil

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from conftest import cli_l6

PAGES = ["pages/home.py", "pages/qbr.py", "pages/explore.py", "pages/bridge.py", "pages/data_quality.py",
         "pages/definitions.py", "pages/audit.py"]
TIMEOUT = 120


def open_page(page: str, query: dict | None = None) -> AppTest:
    """The app's entrypoint, then the page. (AppTest runs app.py itself on the first run only;
    later runs execute the current page's script, whose first line, ui.through_app(), runs
    app.py around it as the server does.)"""
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
    return at


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def md_tables(at: AppTest, raw: bool = False) -> list:
    """The page's static tables (ui.table(static=True): Markdown tables) as pandas frames of
    their cells as shown (Markdown escapes undone), or as written with `raw`."""
    import pandas as pd

    out = []
    for m in at.markdown:
        lines = str(m.value).split("\n")
        if len(lines) < 2 or not lines[0].startswith("| ") or not re.fullmatch(r"\|(-+:?\|)+", lines[1]):
            continue

        def cells(line, unescape):
            parts = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            return [re.sub(r"\\(.)", r"\1", c) if unescape else c.replace("\\|", "|") for c in parts]
        out.append(pd.DataFrame([cells(r, not raw) for r in lines[2:]], columns=cells(lines[0], True)))
    return out


def no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "unexpected problem" in str(e.value)]


def fmt_pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# ------------------------------------------------------------------ renders
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_demo(page, demo_db, app_env):
    app_env(demo_db)
    at = open_page(page)
    no_failure(at)
    assert at.title, "every page has a title"
    body = texts(at)
    if page in ("pages/home.py", "pages/qbr.py"):
        assert len(at.metric) >= 6
        assert at.get("plotly_chart")
    if page == "pages/explore.py":
        assert at.get("plotly_chart") and not at.dataframe  # the numbers' grid opens on demand
    if page == "pages/data_quality.py":
        assert at.get("plotly_chart")
        assert "Run history" in body
    if page == "pages/definitions.py":
        # each metric's daily SQL, read from sql/metrics/l6_daily.sql, shown as written
        assert "TCR" in body and "count(*) filter (where is_completed) as completed" in "\n".join(
            html.unescape(h.proto.body) for h in at.get("html"))


# widgets whose JavaScript a browser loads before the page's first chart, each measured on
# this 2-core machine (docs/PERFORMANCE.md, 2026-12-03): a dropdown about 0.35 s, a grid 0.55 s,
# a text box 0.3 s, a date picker 0.2 s. A page's first view holds none; they open on demand.
FIRST_VIEW_HEAVY = ("selectbox", "multiselect", "dataframe", "date_input", "text_input")


@pytest.mark.parametrize("page", PAGES)
def test_first_view_holds_no_dropdown_grid_text_box_or_date_picker(page, demo_db, app_env):
    app_env(demo_db)
    at = open_page(page)
    no_failure(at)
    found = {kind: [getattr(w, "label", None) or getattr(w, "key", None) for w in getattr(at, kind)]
             for kind in FIRST_VIEW_HEAVY if len(getattr(at, kind))}
    assert not found, found


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty(page, empty_db, app_env):
    app_env(empty_db)
    at = open_page(page)
    no_failure(at)
    assert at.title
    if page in ("pages/home.py", "pages/qbr.py", "pages/explore.py", "pages/bridge.py"):
        assert "empty" in texts(at) or "no interactions" in texts(at).lower()


# ------------------------------------------------------------------ numbers vs the CLI
def test_home_scorecard_matches_cli(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/home.py")
    rows = cli_l6(demo_db, "quarter")
    last_full = rows[-1]  # the demo ends on a quarter's last day
    tiles = {m.label.split(" — ")[0]: m for m in at.metric}
    assert tiles["TCR"].value == fmt_pct(last_full["tcr"])
    assert tiles["HR"].value == fmt_pct(last_full["hr"])
    assert tiles["TTA p50"].value == f"{last_full['tta_p50_s']:.1f} s"
    assert tiles["CPVO"].value == f"${last_full['cpvo_usd']:.4f}"
    prev = rows[-2]
    assert tiles["TCR"].delta.startswith(f"{100 * (last_full['tcr'] - prev['tcr']):+.1f} pts")
    # better or worse in a word, by each metric's direction (not by the delta's color alone)
    assert f"({'better' if last_full['tcr'] > prev['tcr'] else 'worse'})" in tiles["TCR"].delta
    assert f"({'better' if last_full['hr'] < prev['hr'] else 'worse'})" in tiles["HR"].delta
    # each tile's weekly sparkline (inline SVG) says its weeks in words; the quarter's last ISO
    # week ends with the data (on the quarter's last day), so it equals the CLI's last week
    sparks = {h.proto.body.split("Weekly ")[1].split(",")[0]: h.proto.body for h in at.get("html")
              if "Weekly " in h.proto.body}
    assert set(sparks) == {"TCR", "HR", "TTA p50", "HitL-F", "RΔ", "CPVO"}, sparks.keys()
    last_week = cli_l6(demo_db, "week")[-1]
    assert f"last {fmt_pct(last_week['tcr'])}," in sparks["TCR"], sparks["TCR"]
    assert f"last {fmt_pct(last_week['hr'])}," in sparks["HR"], sparks["HR"]
    assert f"last {last_week['tta_p50_s']:.1f} s," in sparks["TTA p50"], sparks["TTA p50"]
    body = texts(at)
    assert "green > 78%" in body  # which threshold made the status, in words
    # no audit signed and the data began long before today: the reminder is overdue, in red
    overdue = [e.value for e in at.error if "overdue" in str(e.value)]
    assert overdue and "days ago" in overdue[0], [e.value for e in at.error]
    # ... and says why it was due then (the demo's data began long before today)
    assert "the first fell due 8 weeks after the data begin" in overdue[0], overdue[0]
    # the demo's run recorded an audit: it needs a sign-off, not a run
    con = duckdb.connect(str(demo_db), read_only=True)
    [(pending,)] = con.execute("select audit_id from audit_records where signed_at is null "
                               "order by created_at desc limit 1").fetchall()
    con.close()
    assert overdue[0].startswith("**The metric audit's sign-off is overdue**: "
                                 f"`{pending}` is recorded and awaits sign-off"), overdue[0]


def test_home_tiles_carry_the_gate_warnings_on_their_inputs(demo_db, app_env):
    # the demo sends some interactions twice: the staging gate warns about the repeated rows
    # (no_repeated_rows on the ingest summary, which touches every metric)
    con = duckdb.connect(str(demo_db), read_only=True)
    observed = con.execute("""select observed_value from meta_gate_results
                              where run_id = (select run_id from meta_runs where status = 'success'
                                              order by started_at desc limit 1)
                                and severity = 'warning' and not success
                                and expectation = 'no_repeated_rows'""").fetchall()
    # how many rows of TCR's inputs (interactions, users; metric_contract.toml): exact duplicates
    # = rows read - kept - quarantined per table, quarantined rows from the quarantine table
    # itself, rows read from the ingest summary
    [(dups, read)] = con.execute("""select sum(rows_read - rows_kept - rows_quarantined), sum(rows_read)
                                    from meta_ingest_summary
                                    where run_id = (select max(run_id) from meta_ingest_summary)
                                      and table_name in ('interactions', 'users')""").fetchall()
    [(quarantined,)] = con.execute("select count(*) from quarantine where table_name in ('interactions', 'users')").fetchall()
    con.close()
    assert observed and "table_name=interactions" in observed[0][0], observed
    app_env(demo_db)
    at = open_page("pages/home.py")
    no_failure(at)
    flagged = [str(c.value) for c in at.caption if "data-quality warning" in str(c.value)]
    assert len(flagged) == 6, flagged  # one per L6 tile
    # ... saying what it means for the figure: staging removed those rows before computing it
    share = 100 * (dups + quarantined) / read
    assert dups > 0 and any(f"{dups:,} duplicate and {quarantined:,} quarantined rows of its input tables left out "
                            f"({'<0.01' if share < 0.01 else f'{share:.2f}'}% of {read:,} read in the run)" in c
                            for c in flagged), flagged  # TCR's tile


def test_stale_data_is_said_beside_the_dates_not_on_the_tiles(demo_db, app_env, tmp_path):
    # a freshness warning (the data stop well before the run) concerns the dates after the
    # data, not the values of the quarters they cover: one banner, the tiles keep only the
    # warnings on their inputs
    db = tmp_path / "stale.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    [(run_id,)] = con.execute("select run_id from meta_runs where status = 'success' "
                              "order by started_at desc limit 1").fetchall()
    con.execute("update meta_runs set as_of = timestamp '2031-01-10 12:00:00' where run_id = ?", [run_id])
    con.execute("""insert into meta_gate_results (run_id, stage, suite, table_name, expectation, column_name,
                       severity, success, observed_value, evaluated_at)
                   values (?, 'staging', 'staging__stg_interactions', 'stg_interactions', 'freshness_ts', 'ts',
                           'warning', false, 'latest=2026-09-30 23:59:46', now()::timestamp)""", [run_id])
    [(last,)] = con.execute("select max(ts)::date from stg_interactions").fetchall()
    con.close()
    app_env(db)
    at = open_page("pages/home.py")
    no_failure(at)
    [banner] = [w.value for w in at.warning if "The data stop on" in str(w.value)]
    days = (dt.date(2031, 1, 10) - last).days
    assert (f"The data stop on {last}**, {days} days before the as-of date of the run these figures come "
            "from (2031-01-10)") in banner
    # the demo's data end on a quarter's last day: no quarter is called partial
    assert last == dt.date(2026, 9, 30) and "partial" not in banner, banner
    flagged = [str(c.value) for c in at.caption if "data-quality warning" in str(c.value)]
    assert len(flagged) == 6 and all("⚠ 1 data-quality warning:" in c for c in flagged), flagged


def _table(at: AppTest):
    """The L6 table: the page's first grid (the drill-down's is its last), opened by `numbers`."""
    assert at.dataframe, "the numbers' expander is closed: open the page with numbers=true"
    return at.dataframe[0].value


def test_explore_widgets_change_numbers_like_cli(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "quarter"})
    no_failure(at)
    all_rows = cli_l6(demo_db, "quarter")
    df = _table(at)
    assert list(df["tcr"].round(10)) == [round(r["tcr"], 10) for r in all_rows]
    assert list(df["interactions"]) == [r["interactions"] for r in all_rows]

    feature = at.pills(key="feature").options[0]
    at.pills(key="feature").set_value([feature]).run()
    no_failure(at)
    f_rows = cli_l6(demo_db, "quarter", feature=feature)
    df = _table(at)
    assert list(df["interactions"]) == [r["interactions"] for r in f_rows]
    assert list(df["tcr"].round(10)) == [round(r["tcr"], 10) for r in f_rows]
    assert list(df["hr"].round(10)) == [round(r["hr"], 10) for r in f_rows]
    assert f_rows[0]["interactions"] != all_rows[0]["interactions"]

    domains = at.pills(key="domain").options
    empty = next(d for d in domains if not cli_l6(demo_db, "quarter", feature=feature, domain=d))
    at.pills(key="domain").set_value([empty]).run()
    no_failure(at)
    assert "No interactions match this slice" in texts(at)  # a slice with no data explains itself
    domain = next(d for d in domains if cli_l6(demo_db, "quarter", feature=feature, domain=d))
    at.pills(key="domain").set_value([domain]).run()
    fd_rows = cli_l6(demo_db, "quarter", feature=feature, domain=domain)
    df = _table(at)
    assert list(df["interactions"]) == [r["interactions"] for r in fd_rows]

    at.pills(key="metrics").set_value(["TTA p50", "CPVO"]).run()
    df = _table(at)
    assert list(df["tta_p50_s"].round(8)) == [round(r["tta_p50_s"], 8) for r in fd_rows]
    assert list(df["cpvo_usd"].round(12)) == [round(r["cpvo_usd"], 12) for r in fd_rows]


def test_explore_selects_users_outside_the_experiment(demo_db, app_env):
    # "(none)" in the experiment group filter: interactions of users with no group, counted
    # here with plain SQL over the interactions
    app_env(demo_db)
    con = duckdb.connect(str(demo_db), read_only=True)
    expected = con.execute("""
        select cast(date_trunc('quarter', activity_date) as date) as q, count(*),
               count(*) filter (where outcome = 'completed') / count(*)
        from int_interactions where experiment_group is null group by 1 order by 1""").fetchall()
    con.close()
    assert expected, "the demo has interactions of users outside the experiment"
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "quarter", "experiment_group": "(none)"})
    no_failure(at)
    assert at.pills(key="experiment_group").value == ["(none)"]
    assert "(none)" in at.pills(key="experiment_group").options
    df = _table(at)
    assert list(df["interactions"]) == [n for _, n, _ in expected]
    assert list(df["tcr"].round(10)) == [round(t, 10) for _, _, t in expected]
    assert "Experiment group: (none)" in texts(at)
    assert "Partial quarters" not in texts(at)  # the demo's quarters are whole (2026-04-01 .. 09-30)
    at.pills(key="experiment_group").set_value(["treatment", "(none)"]).run()
    assert list(_table(at)["interactions"]) == [r["interactions"] for r in cli_l6(demo_db, "quarter")]


def test_drill_down_of_users_outside_the_experiment_counts_like_plain_sql(demo_db, app_env):
    from pipelines import data_access as da

    app_env(demo_db)
    con = duckdb.connect(str(demo_db), read_only=True)
    none, both = con.execute("""
        select count(*) filter (where experiment_group is null),
               count(*) filter (where feature = 'code_assistant') from int_interactions""").fetchall()[0]
    con.close()
    assert da.interactions_page({"experiment_group": ["(none)"]}, None, None, db=demo_db)["total"] == none
    assert da.interactions_page({"experiment_group": ["treatment", "(none)"], "feature": ["code_assistant"]},
                                None, None, db=demo_db)["total"] == both


def test_explore_says_which_weeks_are_partial(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "week"})
    no_failure(at)
    assert str(_table(at)["period_start"].min())[:10] == "2026-03-30"  # the Monday before Wed 2026-04-01
    assert ("Partial weeks: the first week starting 2026-03-30 holds data from 2026-04-01 only; "
            "the last week starting 2026-09-28 holds data through 2026-09-30 only.") in texts(at)
    assert "CPVO on a slice" not in texts(at)
    at = open_page("pages/explore.py", {"grain": "quarter", "metrics": ["CPVO"], "experiment_group": "(none)"})
    assert "CPVO on a slice by experiment group carries the whole platform's infra cost" in texts(at)


def test_explore_says_compare_replaces_the_filter_and_names_a_wrong_cmp_by(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"compare": "true", "cmp_by": "Experiment group",
                                        "experiment_group": "(none)"})
    no_failure(at)
    assert ("Compare replaces the experiment group filter ((none)) with its two values: treatment and (none)."
            in texts(at))
    # a link naming the slice by its column name, not its label, falls back to Feature: said
    at = open_page("pages/explore.py", {"compare": "true", "cmp_by": "experiment_group"})
    assert at.segmented_control(key="cmp_by").value == "feature"
    assert any("`cmp_by = experiment_group`" in str(w.value) for w in at.warning), [w.value for w in at.warning]


def test_audit_history_says_dashes_not_none(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/audit.py")
    [history] = [t for t in md_tables(at) if "signed by" in t.columns]
    assert "None" not in set(history["signed by"]) and set(history["signed by"]) == {"—"}
    assert all(len(v) == 16 for v in history["recorded (UTC)"])  # to the minute: 2026-12-02 15:19


def test_explore_url_state_and_month_grain(demo_db, app_env):
    app_env(demo_db)
    rows = cli_l6(demo_db, "month", domain="billing")
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "month", "domain": "billing", "metrics": ["TCR", "RΔ"]})
    no_failure(at)
    df = _table(at)
    assert len(df) == len(rows)
    assert list(df["interactions"]) == [r["interactions"] for r in rows]
    rd = [None if r["retention_delta_pts"] is None else round(r["retention_delta_pts"], 8) for r in rows]
    got = [None if v != v else round(v, 8) for v in df["retention_delta_pts"]]
    assert got == rd
    # the chart (and so its PNG) names the slice it shows
    title = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert "TCR, RΔ by month" in title and "Domain: billing" in title, title


def test_explore_empty_slice_explains_itself(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"from": "2026-09-30", "to": "2026-04-01"})
    no_failure(at)
    assert "after the To date" in texts(at)


def test_explore_compare_and_drill_down(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "quarter", "compare": "true", "cmp_by": "Feature"})
    no_failure(at)
    df = _table(at)
    assert set(df["slice"]) == {f"Feature = {v}" for v in at.segmented_control(key="cmp_a").options[:2]}
    at.toggle(key="compare").set_value(False).run()
    assert not [k for k in ("drill", "outcome") if any(sb.key == k for sb in at.selectbox)]  # closed at first
    at.toggle(key="drill_on").set_value(True).run()
    period = at.selectbox(key="drill").options[1]
    at.selectbox(key="drill").set_value(period).run()
    at.selectbox(key="outcome").set_value("completed").run()
    no_failure(at)
    drill = at.dataframe[-1].value
    assert len(drill) == 50 and set(drill["outcome"]) == {"completed"}
    assert {"tier1_hallucinated", "final_verdict", "n_interventions", "intervention_kinds"} <= set(drill.columns)
    # what happened comes first, in the columns a 1280-px grid shows before it scrolls
    assert list(drill.columns[:6]) == ["interaction_id", "ts", "outcome", "final_verdict", "n_interventions",
                                       "intervention_kinds"]
    assert "page 1 of" in texts(at)
    at.number_input(key="page").set_value(2).run()
    assert "page 2 of" in texts(at)
    assert at.dataframe[-1].value["interaction_id"][0] not in set(drill["interaction_id"])


def test_qbr_quarter_picker_changes_numbers(demo_db, app_env):
    app_env(demo_db)
    rows = cli_l6(demo_db, "quarter")
    at = open_page("pages/qbr.py")
    no_failure(at)
    tiles = {m.label.split(" — ")[0]: m.value for m in at.metric}
    assert tiles["TCR"] == fmt_pct(rows[-1]["tcr"])
    # the run recorded an audit whose 8-week window ends in the latest full quarter: the
    # summary reports its verdict; the first quarter has no audit and no such bullet
    con = duckdb.connect(str(demo_db), read_only=True)
    [(as_of, verdict)] = con.execute("select as_of, verdict from audit_records").fetchall()
    con.close()
    assert f"The 8-week metric audit as of {as_of}" in texts(at) and f"recommends “{verdict}”" in texts(at)
    # RΔ's tile and the summary set it beside the holdout test's 7-day retention: recomputed
    # here from the per-user rows (retained or not, eligible users of each group) with scipy's
    # Welch t interval, not read from the bridge's own estimate
    from scipy import stats

    q = at.segmented_control(key="quarter").value
    con = duckdb.connect(str(demo_db), read_only=True)
    groups = {g: [float(x) for (x,) in con.execute(
        "select retained_7d::int from bridge_user_quarter where quarter = ? and experiment_group = ? "
        "and retention_eligible", [q, g]).fetchall()] for g in ("treatment", "holdout")}
    con.close()
    t, h = groups["treatment"], groups["holdout"]
    ci = stats.ttest_ind(t, h, equal_var=False).confidence_interval(0.95)
    d = sum(t) / len(t) - sum(h) / len(h)
    said = (f"7-day retention {100 * d:+.1f} pts [{100 * ci.low:+.1f}, {100 * ci.high:+.1f}]"
            .replace("-", "−").replace("7−day", "7-day"))
    assert sum(said in str(c.value) for c in at.caption) == 1 and said in texts(at), said
    assert "RΔ compares users who used the AI with those who did not" in texts(at)
    first_q = min(at.segmented_control(key="quarter").options)  # "2026Q2" < "2026Q3"
    at.segmented_control(key="quarter").set_value(first_q).run()
    no_failure(at)
    tiles = {m.label.split(" — ")[0]: m.value for m in at.metric}
    assert tiles["TCR"] == fmt_pct(rows[0]["tcr"])
    assert "Summary" in texts(at) and "The 8-week metric audit" not in texts(at)


def test_qbr_reports_the_audit_whose_window_ends_latest_in_the_quarter(demo_db, app_env, tmp_path):
    # an audit of an earlier window, recorded later (`audit --as-of`), does not displace the
    # audit whose window ends latest inside the quarter
    db = tmp_path / "audits.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    [(as_of, window_end, verdict)] = con.execute("select as_of, window_end, verdict from audit_records").fetchall()
    con.execute("""insert into audit_records select * replace (
                       'audit-older-window' as audit_id, created_at + interval 1 day as created_at,
                       as_of - interval 14 day as as_of, window_end - interval 14 day as window_end,
                       'keep-older' as verdict)
                   from audit_records""")
    con.close()
    app_env(db)
    at = open_page("pages/qbr.py")
    no_failure(at)
    body = texts(at)
    assert f"The 8-week metric audit as of {as_of}" in body and f"recommends “{verdict}”" in body
    assert "keep-older" not in body


def test_audit_page_a_look_back_audit_joins_the_history_not_the_latest(demo_db, app_env, tmp_path):
    # the form's audit as of an earlier date is recorded and said so after the rerun, but the
    # page keeps showing (and a sign-off keeps applying to) the audit of the newest date
    db = tmp_path / "lookback.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db), read_only=True)
    [(current, as_of)] = con.execute("select audit_id, as_of from audit_records").fetchall()
    con.close()
    app_env(db)
    at = open_page("pages/audit.py")
    no_failure(at)
    assert not at.date_input and not any(b.label.startswith("Run the audit now") for b in at.button)  # closed
    at = open_page("pages/audit.py", {"run_new": "true"})  # the expander's state, from the URL
    no_failure(at)
    assert f"Latest audit `{current}`" in texts(at)
    back = as_of - dt.timedelta(days=28)
    run = next(b for b in at.button if b.label.startswith("Run the audit now"))
    at.date_input[0].set_value(back)
    run.click().run()
    no_failure(at)
    body = texts(at)
    assert f"Latest audit `{current}`" in body
    assert f"(as of {back}) was recorded. It looks back from an earlier date than the latest audit (as of {as_of})" in body
    [history] = [t for t in md_tables(at) if "signed by" in t.columns]
    assert len(history) == 2 and history["as of"][0] == str(as_of)
    at.date_input[0].set_value(as_of)
    next(b for b in at.button if b.label.startswith("Run the audit now")).click().run()
    body = texts(at)
    assert f"(as of {as_of}) ran and was recorded." in body and f"Latest audit `{current}`" not in body


def test_audit_page_says_what_an_audit_could_not_compare(demo_db, app_env, tmp_path):
    from pipelines import audit, warehouse

    db = tmp_path / "early.duckdb"
    shutil.copy(demo_db, db)
    con = warehouse.connect(db)
    first = con.execute("select min(activity_date) from l6_daily").fetchall()[0][0]
    con.execute("delete from audit_checks")
    con.execute("delete from audit_records")
    early = audit.run_audit(con, first - dt.timedelta(days=first.weekday()) + dt.timedelta(weeks=8))
    con.close()
    audit.record(db, early, gate=False)
    app_env(db)
    at = open_page("pages/audit.py")
    no_failure(at)
    [warning] = [str(w.value) for w in at.warning if "reference window" in str(w.value)]
    assert warning.startswith("No data in the reference window") and "not assessed" in warning
    assert any("nothing was compared" in str(c.value) for c in at.caption)  # under the Recommendation tile


def test_qbr_pdf_holds_the_scorecard(demo_db, app_env):
    app_env(demo_db)
    from pypdf import PdfReader

    from pipelines import charts, report
    from pipelines import data_access as da

    q = da.periods(db=demo_db)["full_quarter"]["label"]
    card = da.scorecard(q, db=demo_db)
    bullets = report.summary_bullets(card, da.bridge_report(q, db=demo_db))
    weeks = da.weeks_of(q, db=demo_db)
    from pages import ui

    pdf = report.qbr_pdf(q, ui.scorecard_frame(card), bullets,
                         [("Weekly trend", charts.weekly_trends(weeks, f"Weekly L6 trend — {q}"))], [],
                         images=False)  # the browser test downloads the real one, charts as images
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert f"L6 scorecard {q}" in text
    rows = cli_l6(demo_db, "quarter")
    assert fmt_pct(rows[-1]["tcr"]) in text and fmt_pct(rows[-1]["hr"]) in text
    assert "Task Completion Rate" in text and "Summary" in text
    assert "Changes are computed from unrounded values" in text  # under the scorecard's rounded figures


def test_summary_bullet_splits_a_chains_change(demo_db, app_env):
    """A metric that crossed a threshold: its bullet carries the chain's QoQ dollars, split
    into the metric's own move and the rest, each read back from bridge_waterfall."""
    app_env(demo_db)
    from pipelines import charts, report
    from pipelines import data_access as da

    q = da.periods(db=demo_db)["full_quarter"]["label"]
    card = da.scorecard(q, db=demo_db)
    bullets = report.summary_bullets(card, da.bridge_report(q, db=demo_db))
    con = duckdb.connect(str(demo_db), read_only=True)
    wf = {r[0]: r[1:] for r in con.execute(
        "select ai_metric, usd_change, usd_via_ai_metric, usd_other from bridge_waterfall where quarter = ?",
        [q]).fetchall()}
    con.close()
    crossed = [m for m in card["metrics"] if m["status"] not in ("n/a", m["previous_status"])
               and m["previous_status"] != "n/a" and m["metric"] in wf]
    assert crossed, "the demo plants a TCR drop that crosses a threshold"
    for m in crossed:
        change, via, other = wf[m["metric"]]
        assert via + other == pytest.approx(change, abs=0.02)
        line = next(b for b in bullets if b.startswith(charts.SHORT[m["metric"]] + " "))
        assert charts.fmt_usd(change, True) in line
        assert f"{charts.fmt_usd(via, True)} from {charts.SHORT[m['metric']]}'s own move" in line
        assert f"{charts.fmt_usd(other, True)} from volume" in line


# ------------------------------------------------------------------ words, not tracebacks
def test_gate_failed_banner(demo_db, app_env, tmp_path):
    db = tmp_path / "failed.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    con.execute("""insert into meta_runs (run_id, command, source, started_at, finished_at, status, failed_stage, message)
                   values ('29990101T000000-bad', 'run', 'x', now()::timestamp + interval 1 day, now()::timestamp + interval 1 day,
                           'gate_failed', 'staging', 'critical gate failed at stage `staging`: stg_users: expect_column_values_to_not_be_null on user_id')""")
    con.close()
    app_env(db)
    at = open_page("pages/home.py")
    no_failure(at)
    err = "\n".join(e.value for e in at.error)
    assert "failed its critical gate" in err and "staging" in err and "last good results" in err
    assert len(at.metric) >= 6  # the last good results are still shown


def test_missing_warehouse_builds_demo(tmp_path, app_env, monkeypatch):
    db = tmp_path / "fresh" / "warehouse.duckdb"
    app_env(db)
    monkeypatch.setenv("KPI_BRIDGE_DEMO_USERS", "400")
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.run()
    no_failure(at)
    assert db.exists()
    at.run()
    no_failure(at)
    assert len(at.metric) >= 6


def test_bridge_what_if_slider_moves_dollars(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/bridge.py")
    no_failure(at)
    assert at.get("plotly_chart"), "chain diagrams are drawn"
    moved = {m.label: m.value for m in at.metric}
    assert moved["Dollars moved (P&L)"] in ("+$0", "$0", "−$0")
    slider = at.slider[0]
    slider.set_value(min(slider.max, slider.value + 5.0)).run()
    no_failure(at)
    moved = {m.label: m.value for m in at.metric}
    assert moved["Dollars moved (P&L)"] not in ("+$0", "$0", "−$0")
    from pipelines import bridge, charts, warehouse

    con = warehouse.connect(demo_db, read_only=True)
    quarter = at.segmented_control(key="quarter").value
    chain = at.segmented_control(key="wi_chain").value
    expected = bridge.what_if(con, quarter, chain, at.slider[0].value / 100)  # TCR: a share, shown in %
    con.close()
    assert moved["Dollars moved (P&L)"] == charts.fmt_usd(expected["usd_change"], True)


def test_bridge_edge_method_reads_the_same_in_the_diagram_and_the_table(demo_db, app_env):
    # the $48/h agent-cost edge read "assumption" in the diagram but "observational" in the
    # steps table beneath it
    from pipelines import bridge

    app_env(demo_db)
    at = open_page("pages/bridge.py")
    no_failure(at)
    # the open chain's steps: a static table whose cells wrap (Markdown: "$" escaped)
    [steps] = [t.map(lambda v: v.replace("\u2060", "") if isinstance(v, str) else v)
               for t in md_tables(at) if "how it was obtained" in t.columns]
    diagram = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["annotations"]
    kinds = [a["text"].split("<i>")[1].split("</i>")[0] for a in diagram if "<i>" in a.get("text", "")]
    assert list(steps["method"]) == kinds
    row = steps[steps["to"] == "Support cost"]
    assert list(row["method"]) == ["assumption"]
    assert list(row["estimate"]) == [f"{bridge._value(bridge.assumptions(), 'agent_cost_per_hour_usd'):.2f}"]
    # each estimate and interval as the diagram's edge label prints it
    labels = [a["text"] for a in diagram if "<i>" in a.get("text", "")]
    assert [t.split("<b>")[1].split("</b>")[0] for t in labels] == list(steps["estimate"])
    assert [t.split("<br>")[1].removeprefix("95% CI ") for t in labels] == list(steps["95% CI"])


def test_pages_explain_a_warehouse_without_results(tmp_path, app_env):
    """The first run failed its gate: only the run history exists. Every page says so in words."""
    from pipelines import warehouse

    db = tmp_path / "first_failed.duckdb"
    con = warehouse.connect(db)
    con.execute(warehouse.sql_text("meta/schema.sql"))
    con.execute("""insert into meta_runs (run_id, command, source, started_at, finished_at, status, failed_stage, message)
                   values ('20260101T000000-x', 'run', 'src', now()::timestamp, now()::timestamp, 'gate_failed', 'raw',
                           'critical gate failed at stage `raw`: raw__src_users: expect_column_to_exist on user_id')""")
    con.close()
    app_env(db)
    for page in PAGES:
        at = open_page(page)
        no_failure(at)
        if page in ("pages/home.py", "pages/qbr.py", "pages/explore.py"):
            assert "no good results" in texts(at)
    at = open_page("pages/home.py")
    assert "failed its critical gate" in "\n".join(e.value for e in at.error)


def test_warm_up_fills_the_caches(demo_db):
    from pipelines import data_access as da

    out = da.warm_up(db=demo_db)
    assert isinstance(out.get("total"), float)
    assert not [k for k, v in out.items() if isinstance(v, str)], out  # every step ran
    assert list(out)[:2] == ["slices", "scorecard_full_quarter"], out  # Home's reads come first


def test_fast_l6_equals_the_full_table(demo_db):
    """Views without RΔ read a faster query; it must give exactly l6.l6_table's numbers."""
    from polars.testing import assert_frame_equal

    from pipelines import data_access as da

    cols = ["period_start", "tcr", "hr", "tta_p50_s", "tta_p90_s", "hitl_per_100", "cpvo_usd", "interactions",
            "hr_coverage", "tier3_hr", "tta_n", "tcr_status", "hr_status", "cpvo_usd_status"]
    opts = da.slice_options(db=demo_db)
    for by, f in [("week", None), ("month", {"feature": opts["feature"][:1]}),
                  ("quarter", {"domain": opts["domain"][:2], "segment": opts["segment"][:1]}),
                  ("day", {"model_version": opts["model_version"][-1:]})]:
        fast = da.l6(by, f, db=demo_db, metrics=["tcr"])
        full = da.l6(by, f, db=demo_db)
        # equal up to the last bits of a float sum (DuckDB adds in parallel, in no fixed order)
        assert_frame_equal(fast.select(cols), full.select(cols), check_exact=False, rel_tol=1e-12, abs_tol=1e-15)


def test_db_flag_selects_the_warehouse(demo_db, empty_db, app_env, monkeypatch):
    """`streamlit run app.py -- --db PATH` wins over $KPI_BRIDGE_DB."""
    import sys

    app_env(empty_db)
    monkeypatch.setattr(sys, "argv", ["app.py", "--db", str(demo_db)])
    at = open_page("pages/home.py")
    no_failure(at)
    assert len(at.metric) >= 6  # the demo's scorecard, not the empty warehouse's message


# ------------------------------------------------------------------ lazy tabs
AUDIT_TABS = {"Decay": ["chart_decay"], "Drift": ["chart_psi"], "Calibration": ["chart_calibration"],
              "Anti-gaming": ["chart_gaming"], "Alignment": ["chart_alignment"], "Guardrails & tiers": [],
              "Data quality": []}


@pytest.mark.parametrize("tab", list(AUDIT_TABS))
def test_audit_draws_only_the_open_tab_named_in_the_url(demo_db, app_env, tab):
    app_env(demo_db)
    at = open_page("pages/audit.py", {"tab": tab})
    no_failure(at)
    assert [c.key for c in at.get("plotly_chart")] == AUDIT_TABS[tab], f"{tab}: only the open tab's chart"
    if tab == "Guardrails & tiers":
        assert "Tier agreement" in texts(at)
    if tab == "Data quality":
        assert "critical failure(s)" in texts(at)


def test_qbr_and_bridge_draw_the_chain_named_in_the_url(demo_db, app_env):
    app_env(demo_db)
    from pipelines import data_access as da

    q = da.periods(db=demo_db)["full_quarter"]["label"]
    chains = [c["name"] for c in da.bridge_report(q, db=demo_db)["chains"]]
    assert len(chains) >= 3
    at = open_page("pages/qbr.py")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert not any(" — " in t and t.split(" — ")[0] in chains for t in titles)  # diagrams: on demand
    assert not at.tabs
    at = open_page("pages/qbr.py", {"diagrams": "true"})
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert sum(t.startswith(f"{chains[0]} — ") for t in titles) == 1
    assert not any(t.startswith(f"{chains[2]} — ") for t in titles)  # closed tabs are not drawn
    label = next(t.label for t in at.tabs if t.label.endswith(chains[2]))
    at = open_page("pages/qbr.py", {"diagrams": "true", "qbr_chain": label})
    no_failure(at)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith(f"{chains[2]} — ") for t in titles) and not any(
        t.startswith(f"{chains[0]} — ") for t in titles)
    at = open_page("pages/bridge.py", {"bridge_chain": label})
    no_failure(at)
    assert f"#### {chains[2]}" in [m.value for m in at.markdown]
    assert f"#### {chains[0]}" not in [m.value for m in at.markdown]


def test_definitions_sends_a_source_file_only_when_its_expander_is_open(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/definitions.py")
    no_failure(at)
    closed = len(at.code)
    at = open_page("pages/definitions.py", {"file_0": "true"})  # the expander's state, from the URL
    no_failure(at)
    from pipelines import data_access as da

    name, text = next(iter(da.definitions()["files"].items()))
    assert len(at.code) == closed + 1 and at.code[-1].value == text.rstrip("\n"), name


def test_explore_table_shows_each_unit(demo_db, app_env):
    # rates as percentages, CPVO in dollars to the hundredth of a cent, TTA in seconds:
    # the column formats follow each metric's contract unit
    app_env(demo_db)
    at = open_page("pages/explore.py", {"numbers": "true", "grain": "quarter", "metrics": ["TCR", "HR", "TTA p50", "CPVO", "RΔ"]})
    no_failure(at)
    config = json.loads(at.dataframe[0].proto.columns)
    formats = {c["label"]: c["type_config"].get("format") for c in config.values() if "label" in c}
    assert formats["TCR"] == formats["HR"] == "percent", formats
    assert formats["CPVO"] == "$%.4f" and formats["TTA p50"] == "%.2f s" and formats["RΔ"] == "%+.2f pts", formats


def test_scorecard_recent_window_counts_the_quarters_last_four_weeks(demo_db, app_env):
    # the last 28 days of the latest full quarter, checked against TCR counted straight from
    # the staged interactions (not through the L6 query)
    app_env(demo_db)
    from pipelines import data_access as da

    q = da.periods(db=demo_db)["full_quarter"]["label"]
    card = da.scorecard(q, db=demo_db)
    assert (card["recent_to"] - card["recent_from"]).days == 27 and card["recent_to"] == card["end"]
    con = duckdb.connect(str(demo_db), read_only=True)
    [(tcr,)] = con.execute("select avg(case when outcome = 'completed' then 1.0 else 0.0 end) from stg_interactions "
                           "where cast(ts as date) between ? and ?",
                           [card["recent_from"], card["recent_to"]]).fetchall()
    con.close()
    m = next(m for m in card["metrics"] if m["metric"] == "tcr")
    assert m["recent"] == pytest.approx(tcr, abs=1e-12)
    # the demo plants the 82% -> 68% TCR drop inside this quarter: it ends red, below its average
    from pipelines import report

    assert m["recent_status"] == "red" and m["status"] != "red", (m["recent"], m["value"])
    assert any(b.startswith(f"TCR ended {q} worse") for b in report.summary_bullets(card))


def test_weekly_trend_holds_only_the_quarters_days(demo_db, app_env):
    """A quarter's weekly rows are ISO weeks cut at its edges: the first and last hold only
    the quarter's days (TCR and counts from the staged interactions, not the L6 query);
    the whole weeks between equal `python -m pipelines l6 --by week`."""
    app_env(demo_db)
    from pipelines import charts
    from pipelines import data_access as da

    q = da.periods(db=demo_db)["full_quarter"]
    weeks = da.weeks_of(q["label"], db=demo_db)
    assert weeks["period_from"].min() == q["start"] and weeks["period_to"].max() == q["end"]
    assert weeks["days"].sum() == (q["end"] - q["start"]).days + 1  # every day once, none outside
    con = duckdb.connect(str(demo_db), read_only=True)
    for row in (weeks.row(0, named=True), weeks.row(-1, named=True)):
        [(n, tcr)] = con.execute(
            "select count(*), avg(case when outcome = 'completed' then 1.0 else 0.0 end) from stg_interactions "
            "where cast(ts as date) between ? and ?", [row["period_from"], row["period_to"]]).fetchall()
        assert row["interactions"] == n and row["tcr"] == pytest.approx(tcr, abs=1e-12)
    con.close()
    whole = {r["period_start"]: r for r in cli_l6(demo_db, "week")}
    inner = weeks.filter(pl.col("days") == 7)
    assert inner.height >= 11
    for r in inner.iter_rows(named=True):
        expected = whole[str(r["period_start"])]
        assert r["interactions"] == expected["interactions"]
        assert r["tcr"] == pytest.approx(expected["tcr"], abs=1e-12)
        assert r["tta_p90_s"] == pytest.approx(expected["tta_p90_s"], abs=1e-9)
    first = weeks.row(0, named=True)
    assert first["days"] == 5  # 2026Q3 starts on a Wednesday: Jul 1-5 of the week of Jun 29
    fig = charts.weekly_trends(weeks, "t")
    assert fig.data[0].x[0] == str(q["start"])
    assert fig.data[0].hovertext[0].startswith("Jul 01–05 (5 days, part of the week): ")
    assert fig.data[0].hovertext[1].startswith("week of Jul 06: ")
    # its ticks fall on Mondays: from the Monday of that first week (Jun 29), every fourth week
    assert fig.layout.xaxis.tick0 == "2026-06-29" and dt.date(2026, 6, 29).weekday() == 0
    assert fig.layout.xaxis.dtick == 28 * 86_400_000 and fig.layout.xaxis.tickangle == 0


def test_weekly_trend_of_a_quarter_to_date_stops_at_the_data(tmp_path, app_env):
    """Data ending on a Wednesday: the quarter to date's last week covers Monday to Wednesday
    (3 days), not the whole week; its count is the staged interactions of those days."""
    from pipelines import data_access as da
    from pipelines import demo_data, runner

    db = tmp_path / "w.duckdb"
    demo_data.generate(tmp_path / "src", users=300, days=30, end_date=dt.date(2026, 8, 19))
    runner.run(tmp_path / "src", db, gates=False)
    app_env(db)
    p = da.periods(db=db)
    assert p["qtd"]["label"] == "2026Q3" and p["last_date"] == dt.date(2026, 8, 19)
    weeks = da.weeks_of("2026Q3", db=db)
    last = weeks.row(-1, named=True)
    assert (last["period_from"], last["period_to"], last["days"]) == (dt.date(2026, 8, 17), dt.date(2026, 8, 19), 3)
    con = duckdb.connect(str(db), read_only=True)
    [(n,)] = con.execute("select count(*) from stg_interactions where cast(ts as date) between ? and ?",
                         [last["period_from"], last["period_to"]]).fetchall()
    con.close()
    assert last["interactions"] == n > 0
    first = weeks.row(0, named=True)  # the data start on Jul 21 (30 days), a Tuesday
    assert (first["period_from"], first["days"]) == (dt.date(2026, 7, 21), 6)


def test_explore_says_which_link_values_it_left_out(demo_db, app_env):
    """A mistyped shared link: the unknown slice value used to vanish and the page showed every
    interaction as if nothing was asked; unknown metrics, grains and dates likewise."""
    app_env(demo_db)
    at = open_page("pages/explore.py", {"feature": "nonexistent", "metrics": ["TCR", "FOO"], "grain": "decade",
                                        "from": "garbage", "domain": "billing"})
    no_failure(at)
    [warning] = [w.value for w in at.warning if "This link asked for" in str(w.value)]
    for part in ("`feature = nonexistent`", "`metrics = FOO`", "`grain = decade`", "`from = garbage`"):
        assert part in warning, warning
    assert "billing" not in warning and "TCR" not in warning  # what it took is not listed
    # a link with only valid values says nothing
    at = open_page("pages/explore.py", {"grain": "month", "domain": "billing", "metrics": ["TCR", "RΔ"],
                                        "from": "2026-05-01"})
    no_failure(at)
    assert not [w.value for w in at.warning if "This link asked for" in str(w.value)]


def test_explore_drill_down_page_past_the_end_says_so(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"page": "99999"})  # a link into the drill-down opens it
    no_failure(at)
    [cap] = [c.value for c in at.caption if "interactions · page" in str(c.value)]
    total = int(cap.split(" interactions")[0].replace(",", ""))
    last = -(-total // 50)
    assert f"page {last:,} of {last:,} (50 per page)" in cap and "page 99,999 was asked: it shows the last" in cap, cap


def test_audit_guardrails_in_display_units(demo_db, app_env):
    """The guardrail lines used to read 'hr (guardrail) <= 0.05: value 0.03144675039141877 —
    violated', though only a domain broke the limit."""
    import re

    app_env(demo_db)
    at = open_page("pages/audit.py", {"tab": "Guardrails & tiers"})
    no_failure(at)
    body = texts(at)
    [hr_line] = [ln for ln in body.splitlines() if ln.startswith("**HR** (guardrail)")]
    con = duckdb.connect(str(demo_db), read_only=True)
    [(start, end)] = con.execute("select window_start, window_end from audit_records").fetchall()
    con.close()
    assert "≤ 5.0%: value " in hr_line, hr_line
    assert f" overall in the audit window {start:%Y-%m-%d} → {end:%Y-%m-%d} — ⚠ violated in billing" in hr_line, hr_line
    # a raw float on the guardrails tab (dollars may carry 5 decimals: $0.00402 against $0.00400)
    assert not re.search(r"(?<!\$)\d\.\d{5,}|\$\d\.\d{6,}", body), "a raw float on the guardrails tab"


def test_qbr_first_quarter_explains_its_missing_waterfall(demo_db, app_env):
    """The data's first quarter has no previous one: a sentence, not an empty chart titled
    'previous quarter → …' with a PNG button."""
    import datetime as dt

    app_env(demo_db)
    first = dt.date.fromisoformat(str(cli_l6(demo_db, "quarter")[0]["period_start"])[:10])
    label = f"{first.year}Q{(first.month - 1) // 3 + 1}"
    at = open_page("pages/qbr.py", {"quarter": label})
    no_failure(at)
    assert at.segmented_control(key="quarter").value == label
    assert f"No quarter-over-quarter waterfall for {label}" in texts(at)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert not any("Quarter-over-quarter change" in t for t in titles), titles


def test_explore_compare_of_one_value_with_itself_says_so(demo_db, app_env):
    """Comparing a value with itself used to draw two identical panels without a word (the
    experiment group offered only 'treatment' then). Its two values now: treatment against
    the users outside the experiment, by default."""
    app_env(demo_db)
    at = open_page("pages/explore.py", {"compare": "true", "cmp_by": "Experiment group"})
    no_failure(at)
    assert (at.segmented_control(key="cmp_a").value, at.segmented_control(key="cmp_b").value) == ("treatment", "(none)")
    assert not any("Left and right are the same" in str(w.value) for w in at.warning)
    at.segmented_control(key="cmp_b").set_value(at.segmented_control(key="cmp_a").value).run()
    assert any("Left and right are the same" in str(w.value) for w in at.warning), [w.value for w in at.warning]


def test_explore_warns_that_short_period_rd_runs_small(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/explore.py", {"metrics": ["RΔ"], "grain": "day"})
    no_failure(at)
    assert "RΔ by day: a period's non-AI users" in texts(at)
    at = open_page("pages/explore.py", {"metrics": ["RΔ"], "grain": "quarter"})
    no_failure(at)
    assert "a period's non-AI users" not in texts(at)


def test_static_tables_show_dollars_as_written_and_keep_signs_on_their_numbers(demo_db, app_env):
    """The chains table is Markdown (cells wrap at 1280 px): "$" would start a
    formula, and a line could break between "−" and "$" ("−" alone at a line's end)."""
    from pages import ui

    assert ui.md_escape("+$1 to *x* a_b") == "+\\$1 to \\*x\\* a\\_b"
    assert ui.keep_sign(ui.md_escape("−$254,035 to −$249,489; 3 − 2")) == \
        "−\u2060\\$254,035 to −\u2060\\$249,489; 3 − 2"
    app_env(demo_db)
    at = open_page("pages/bridge.py")
    no_failure(at)
    [chains] = [t for t in md_tables(at, raw=True) if "measured against" in t.columns]
    cis = [v for v in chains["95% CI"] if v != "exact (no sampling error)"]  # AI spend, measured whole
    assert cis and all("\\$" in v and "$" not in v.replace("\\$", "") for v in cis)
    assert all("\u2060" in v for v in cis if "−" in v)


def test_qbr_bullets_keep_each_sign_on_its_dollars(demo_db, app_env):
    # "(−" at a line's end and "$2,504" on the next: a word joiner holds them together
    app_env(demo_db)
    at = open_page("pages/qbr.py")
    no_failure(at)
    [bullets] = [m.value for m in at.markdown if m.value.startswith("- ") and "KPI bridge values" in m.value]
    assert "−$" not in bullets and "+$" not in bullets
    assert "−\u2060$" in bullets or "+\u2060$" in bullets


def test_tables_print_counts_with_thousands_separators(demo_db, app_env):
    # the ingest table read "584056": a static table writes 584,056; a grid formats integer
    # columns "localized"
    from pages import ui

    app_env(demo_db)
    at = open_page("pages/data_quality.py")
    no_failure(at)
    con = duckdb.connect(str(demo_db), read_only=True)
    [(read, kept)] = con.execute("select rows_read, rows_kept from meta_ingest_summary where table_name = "
                                 "'interactions' order by run_id desc limit 1").fetchall()
    con.close()
    [ingest] = [t for t in md_tables(at) if "rows_read" in t.columns]  # seven tables: shown whole
    row = ingest[ingest["table_name"] == "interactions"].iloc[0]
    assert (row["rows_read"], row["rows_kept"]) == (f"{read:,}", f"{kept:,}") and read > 1000
    # the static table right-aligns its numbers and shows text as written: "|", "\\", line
    # breaks (also a bare CR), Streamlit's ":red[…]", links and HTML are escaped or flattened
    assert ui.markdown_table(pl.DataFrame({"t": ["a|b"], "n": [12345]})) == "| t | n |\n|---|---:|\n| a\\|b | 12,345 |"
    assert ui.markdown_table(pl.DataFrame({"d": ["keep\rTCR\r\n:red[x] [l](u) <b>&amp;", "a\\"],
                                           "f": [float("nan"), -1234.5]})) == (
        "| d | f |\n|---|---:|\n| keep TCR \\:red\\[x\\] \\[l\\](u) \\<b\\>\\&amp; | — |\n| a\\\\ | −1,234 |")
    assert ui.markdown_table(pl.DataFrame()) == ""
    # text that is all numbers as printed ("+$7,250", "−$510 to +$15,009 †", "[−0.119, −0.00751]")
    # is right-aligned like a number column; words and dates are not; an icon keeps its word
    table = ui.markdown_table(pl.DataFrame({"impact": ["+$7,250", "n/a"], "ci": ["−$510 to +$15,009 †", "[−0.119, 0.2]"],
                                            "reading": ["⚠ no", "cost"], "as of": ["2026-10-01", None]}))
    assert table.split("\n")[1] == "|---:|---:|---|---|"
    assert "⚠\u00a0no" in table


def test_grid_tables_format_counts_localized():
    # a grid (a table too long to show whole) formats its integer columns "localized" (584,056)
    def script():
        import polars as pl
        from pages import ui
        ui.table(pl.DataFrame({"rows_read": [584056] * 3}), "t", key="t")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    no_failure(at)
    [grid] = at.dataframe
    config = json.loads(grid.proto.columns)
    formats = {c["label"]: c["type_config"].get("format") for c in config.values() if "label" in c}
    assert formats["rows_read"] == "localized", formats


def test_audit_decay_says_its_window_beside_the_scorecards_quarter(demo_db, app_env):
    # the audit's TCR "already red" beside Home's amber quarter: the decay tab names its weeks
    app_env(demo_db)
    at = open_page("pages/audit.py")
    no_failure(at)
    con = duckdb.connect(str(demo_db), read_only=True)
    [(findings,)] = con.execute("select findings from audit_records order by as_of desc, created_at desc "
                                "limit 1").fetchall()
    con.close()
    win = json.loads(findings)["window"]
    [cap] = [str(c.value) for c in at.caption if "over the audit window" in str(c.value)]
    assert f"({win['start'][:10]} → {win['end'][:10]})" in cap and "already red" in cap, cap


def test_each_pages_url_is_its_file_name():
    """On a freshly started server the first request for a page's URL is matched against the
    files of pages/ (Streamlit's pages-folder mode) before app.py declares the navigation: a
    URL that differs from its file ("data-quality" for data_quality.py) popped a "Page not
    found" dialog over the page."""
    import ast

    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[1] / "app.py").read_text())
    [pages] = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
               and any(getattr(t, "id", None) == "PAGES" for t in n.targets)]
    assert pages and all(url is None or url == Path(path).stem for path, _, _, url in pages), pages


def test_qbr_states_the_dollar_sign_rule(demo_db, app_env):
    app_env(demo_db)
    at = open_page("pages/qbr.py")
    no_failure(at)
    assert any("Dollar figures are P&L impact: + is a saving or revenue, − a cost" in str(c.value)
               for c in at.caption), [c.value for c in at.caption]


def test_freshness_banner_names_the_partial_quarter_only_inside_one():
    import datetime as dt

    from pages import ui

    mid = ui.freshness_text({"last_date": dt.date(2026, 8, 14), "as_of": dt.date(2026, 12, 3), "days": 111})
    assert "through 2026-08-14 only, and 2026Q3, which the data end inside, is partial." in mid
    end = ui.freshness_text({"last_date": dt.date(2026, 9, 30), "as_of": dt.date(2026, 12, 3), "days": 64})
    assert "through 2026-09-30 only. A feed may have stopped" in end


def test_data_quality_failures_are_a_readable_static_table(demo_db, app_env):
    # a few failing expectations: a static table (no grid before the page's first chart) whose
    # sample bad values read "k=v", not the stored JSON; the CSV keeps them whole
    con = duckdb.connect(str(demo_db), read_only=True)
    [(run_id,)] = con.execute("select run_id from meta_runs where status = 'success' "
                              "order by started_at desc limit 1").fetchall()
    [(sample,)] = con.execute("select sample_values from meta_gate_results where run_id = ? and not success "
                              "and expectation = 'no_repeated_rows'", [run_id]).fetchall()
    con.close()
    rows = json.loads(sample)
    app_env(demo_db)
    at = open_page("pages/data_quality.py")
    no_failure(at)
    tables = [t for t in md_tables(at) if "sample bad values" in t.columns]
    assert tables, "the failing expectations are a static table"
    [shown] = [v.replace("\u200b", "") for t in tables for v, e in zip(t["sample bad values"], t["expectation"])
               if e.replace("\u200b", "") == "no_repeated_rows"]
    assert shown.startswith(", ".join(f"{k}={v}" for k, v in rows[0].items())), shown
    assert "{" not in shown and '"' not in shown


def test_data_quality_run_history_is_a_static_table_of_the_latest_runs(demo_db, app_env, tmp_path):
    # more runs than a static table shows: the newest STATIC_ROWS, newest first, each run's
    # duration from its recorded start and end; the CSV keeps every run
    from pages import ui

    db = tmp_path / "runs.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    for i in range(ui.STATIC_ROWS + 2):
        con.execute("""insert into meta_runs (run_id, command, source, started_at, finished_at, status, failed_stage, message)
                       values (?, 'run', 'src', timestamp '2020-01-01 08:00:00' + to_minutes(?),
                               timestamp '2020-01-01 08:00:00' + to_minutes(?) + to_seconds(?), 'error', 'raw',
                               'table `users`: column `user_id` is missing')""", [f"old-{i:02d}", i, i, 61.34])
    [(n,)] = con.execute("select count(*) from meta_runs").fetchall()
    con.close()
    app_env(db)
    at = open_page("pages/data_quality.py")
    no_failure(at)
    [runs] = [t for t in md_tables(at) if "took" in t.columns]
    assert len(runs) == ui.STATIC_ROWS and n == ui.STATIC_ROWS + 3
    assert f"The latest {ui.STATIC_ROWS} of {n} runs, newest first" in texts(at)
    assert runs["command"][0] == "demo" and runs["status"][0].startswith("✔")
    [old] = [r for r in runs.to_dict("records") if r["run"] == "old-16"]
    assert old["took"] == "1 min 1 s" and old["status"] == "✖\u00a0error" and old["failed stage"] == "raw"
    assert old["started (UTC)"] == "2020-01-01 08:16"
    assert "old-00" not in set(runs["run"])  # the oldest are in the CSV only


def test_audit_notes_name_metrics_not_ids(demo_db, app_env):
    app_env(demo_db)
    for tab in ("Anti-gaming", "Alignment"):
        at = open_page("pages/audit.py", {"tab": tab})
        no_failure(at)
        body = texts(at)
        assert "TCR" in body and not re.search(r"\b(tcr|requery_rate|hr_coverage|cpvo_usd)\b", body), (tab, body[-800:])
    # the alignment's behavior measure is the audit's weekly one, said apart from the Bridge's
    assert "tickets filed in an ISO week by users who used the AI that week" in body


def test_data_quality_sample_of_quarantined_rows_opens_on_demand(demo_db, app_env):
    """The sample (and its picker) is built only when its expander is open; then it shows up to
    ten stored rows of the picked table and reason, counted here with plain SQL."""
    app_env(demo_db)
    con = duckdb.connect(str(demo_db), read_only=True)
    kinds = con.execute("select table_name, reason, count(*) from quarantine group by all order by 1, 2").fetchall()
    con.close()
    assert kinds, "the demo quarantines rows"
    at = open_page("pages/data_quality.py")
    no_failure(at)
    assert not at.get("segmented_control") and not at.selectbox
    label = next(e.label for e in at.expander if e.label.startswith("Sample quarantined rows"))
    assert label.startswith(f"Sample quarantined rows, {len(kinds)} kind{'s' if len(kinds) > 1 else ''} "), label
    at = open_page("pages/data_quality.py", {"samples": "true"})
    no_failure(at)
    picker = at.segmented_control(key="q_pick") if len(kinds) <= 8 else at.selectbox(key="q_pick")
    assert list(picker.options) == [f"{t} · {r}" for t, r, _ in kinds]
    t, r, n = kinds[-1]
    picker.set_value(f"{t} · {r}").run()
    no_failure(at)
    [sample] = [tb for tb in md_tables(at) if "row_json" in tb.columns]
    assert len(sample) == min(10, n) and set(sample["table_name"]) == {t} and set(sample["reason"]) == {r}
    con = duckdb.connect(str(demo_db), read_only=True)
    stored = {j for (j,) in con.execute("select row_json from quarantine where table_name = ? and reason = ?",
                                        [t, r]).fetchall()}
    con.close()
    shown = {j.replace("\u200b", "") for j in sample["row_json"]}  # break opportunities, not text
    assert shown <= stored, (shown, stored)


def test_audit_sign_off_form_opens_on_demand_and_records_the_decision(demo_db, app_env, tmp_path):
    db = tmp_path / "sign.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db), read_only=True)
    [(audit_id, verdict)] = con.execute("select audit_id, verdict from audit_records").fetchall()
    con.close()
    app_env(db)
    at = open_page("pages/audit.py")
    no_failure(at)
    assert f"`{audit_id}` is not signed off yet." in texts(at) and not at.text_input and not at.radio
    at = open_page("pages/audit.py", {"sign": "true"})  # the expander's state, from the URL
    no_failure(at)
    assert at.radio[0].value == verdict  # the audit's own recommendation, preselected
    other = next(o for o in at.radio[0].options if o != verdict)
    at.radio[0].set_value(other)
    at.button[0].click().run()  # no name: refused, nothing recorded
    assert any("Enter the name" in str(w.value) for w in at.warning)
    at.text_input[0].set_value("Dana Exec")
    at.radio[0].set_value(other)
    next(b for b in at.button if b.label == "Sign off").click().run()
    no_failure(at)
    con = duckdb.connect(str(db), read_only=True)
    [(by, decision)] = con.execute("select signed_by, decision from audit_records").fetchall()
    con.close()
    assert (by, decision) == ("Dana Exec", other)
    assert "Signed off by Dana Exec" in texts(at) and not at.text_input


def test_pick_one_and_pick_many_are_buttons_for_a_few_options_and_dropdowns_beyond():
    def script():
        import streamlit as st

        from pages import ui
        n = st.session_state.get("n", 3)
        opts = [f"o{i}" for i in range(n)]
        st.session_state["one"] = ui.pick_one("One", opts, opts[-1], key="p1")
        st.session_state["many"] = ui.pick_many("Many", opts, key="pm", buttons_up_to=5)

    for n, one_kind, many_kind in ((3, "segmented_control", "pills"), (8, "segmented_control", "multiselect"),
                                   (9, "selectbox", "multiselect")):
        at = AppTest.from_function(script, default_timeout=TIMEOUT)
        at.session_state["n"] = n
        at.run()
        no_failure(at)
        assert [w.key for w in getattr(at, one_kind)] == ["p1"] and [w.key for w in getattr(at, many_kind)] == ["pm"]
        assert at.session_state["one"] == f"o{n - 1}" and at.session_state["many"] == []
