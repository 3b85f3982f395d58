"""Rendering helpers shared by the pages (no SQL, no statistics: data come from data_access)."""
from __future__ import annotations

import contextlib
import datetime as dt
import html
import math
import re
import runpy
import threading
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pipelines import charts, config
from pipelines import data_access as da
from pipelines import report

BADGE_COLORS = {"green": "green", "amber": "orange", "red": "red", "n/a": "gray"}
BADGE_ICONS = {"green": ":material/check_circle:", "amber": ":material/warning:", "red": ":material/error:",
               "n/a": ":material/remove:"}


APP_PY = Path(__file__).resolve().parent.parent / "app.py"
_through_app = threading.local()  # set while app.py runs a page, in the script's own thread


@contextlib.contextmanager
def page_run_by_app():
    """app.py runs the selected page inside this."""
    _through_app.active = True
    try:
        yield
    finally:
        _through_app.active = False


def through_app() -> None:
    """Every page's first line. When a freshly started server's first visitor opens a page's
    own URL (a shared link to /explore?…), Streamlit has not yet seen app.py declare the
    navigation and runs the page file by itself (its older `pages/` folder mode): no demo
    build, no sidebar, no run banner, no words-not-tracebacks guard, and every file of
    pages/ listed as a page. Then run app.py instead, which draws this page the usual way."""
    if getattr(_through_app, "active", False) or get_script_run_ctx() is None:
        return
    runpy.run_path(str(APP_PY), run_name="__main__")
    st.stop()


def url_values() -> dict[str, list[str]]:
    """The query string as the page run found it (before bound widgets rewrite it)."""
    return {k: st.query_params.get_all(k) for k in st.query_params.keys()}


def ignored_url_values(asked: dict[str, list[str]], taken: dict[str, list[str]]) -> list[str]:
    """Values a link asked for that the page's controls did not take (a mistyped slice value,
    an unknown metric or grain, a date outside the data): "name = value" each. Streamlit drops
    them from the controls without a word."""
    return [f"{k} = {v}" for k, values in asked.items() if k in taken for v in values if v not in taken[k]]


def explain_ignored_url_values(asked: dict[str, list[str]], taken: dict[str, list[str]]) -> None:
    ignored = ignored_url_values(asked, taken)
    if ignored:
        st.warning("This link asked for " + ", ".join(f"`{x}`" for x in ignored) + ", which "
                   + ("is" if len(ignored) == 1 else "are") + " not among the choices here, so the view "
                   "below leaves " + ("it" if len(ignored) == 1 else "them") + " out: check the link.",
                   icon=":material/link_off:")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def require_results() -> dict | None:
    """The warehouse info, or None after explaining on the page why there is nothing to show."""
    try:
        info = da.warehouse_info()
    except da.WarehouseUnavailable as exc:
        st.warning(str(exc), icon=":material/warning:")
        return None
    if not info["exists"]:
        st.warning(f"No warehouse at `{info['path']}`. Build one with `python -m pipelines demo --db {info['path']}`.",
                   icon=":material/warning:")
        return None
    if not info["has_results"]:
        st.warning("The warehouse holds no good results yet: its first run did not finish. "
                   "The Data quality page shows what failed.", icon=":material/warning:")
        return None
    if not info["interactions"]:
        st.info("The warehouse is empty: its source held no interactions, so there are no metrics to show yet. "
                "Load telemetry with `python -m pipelines run --source DIR` (or build the demo with "
                "`python -m pipelines demo`).", icon=":material/info:")
        return None
    return info


# a choice among at most this many options is a row of buttons; beyond it, a dropdown
BUTTON_OPTIONS = 8


def pick_one(label: str, options: list, default, key: str, help: str | None = None, format_func=str):
    """One choice, kept in the URL: a row of buttons (st.segmented_control) for a few options,
    every one in view and one click away; a dropdown beyond BUTTON_OPTIONS. A page whose first
    view holds a dropdown loads the combobox's JavaScript before its first chart: 0.15-0.45 s
    of the first load on a 2-core machine (`python -m pipelines.perf --widgets`); buttons, none."""
    if len(options) <= BUTTON_OPTIONS:
        return st.segmented_control(label, options, default=default, key=key, help=help, bind="query-params",
                                    required=True, format_func=format_func, wrap=True)
    return st.selectbox(label, options, index=options.index(default), key=key, help=help, bind="query-params",
                        format_func=format_func)


def button_rows(groups: dict[str, list], budget: int = 100) -> list[list[str]]:
    """Groups of buttons (name → options) packed into rows of columns, in order: a row takes
    groups while their labels fit about `budget` characters (a 1280-px page's width)."""
    rows, width = [], budget
    for name, options in groups.items():
        w = button_width(options)
        if width + w > budget:
            rows.append([])
            width = 0
        rows[-1].append(name)
        width += w
    return rows


def button_width(options: list) -> int:
    """A group of buttons' width in characters: each label and its padding; at least a label's."""
    return max(16, sum(len(str(o)) + 4 for o in options))


def pick_many(label: str, options: list, key: str, default: list | None = None, help: str | None = None,
              buttons_up_to: int = 12) -> list:
    """Any number of choices, kept in the URL: toggle buttons (st.pills) for up to
    `buttons_up_to` options, a multi-select dropdown beyond (see pick_one for why). None
    picked reads "all" in the dropdown; the page says what an empty choice means."""
    if len(options) <= buttons_up_to:
        return st.pills(label, options, selection_mode="multi", default=default, key=key, help=help,
                        bind="query-params", wrap=True) or []
    return st.multiselect(label, options, default=default, key=key, help=help, bind="query-params",
                          placeholder="all")


def status_badge(status: str, threshold: str | None = None) -> None:
    label = charts.STATUS_WORDS.get(status, status)
    st.badge(label, icon=BADGE_ICONS.get(status), color=BADGE_COLORS.get(status, "gray"),
             help=f"Threshold used: {threshold}" if threshold else None)


def scorecard_metrics(card: dict, key: str) -> None:
    """The six L6 metrics as metric tiles: value, change vs previous quarter, weekly sparkline,
    status word + icon and the threshold that made it."""
    cols = []
    for i, m in enumerate(card["metrics"]):
        if i % 3 == 0:  # one row of three tiles at a time, so rows line up
            cols = st.columns(3)
        with cols[i % 3].container(border=True):
            delta = charts.fmt_change(m["metric"], m["change"])
            if delta:
                delta += f" ({charts.change_word(m['metric'], m['change'])})"
            prev_q = card.get("previous_quarter")
            st.metric(
                charts.tile_label(m["metric"]),
                charts.fmt_value(m["metric"], m["value"]),
                delta=f"{delta} vs {prev_q}" if delta and prev_q else None,
                delta_color="normal" if m["direction"] == "higher" else "inverse",
                help=f"{m['label']}. Below: the weekly sparkline ({charts.unit_text(m['metric'])}; ISO weeks cut at the "
                     f"quarter's edges, so the first and last may be partial). Threshold: {m['threshold']}. "
                     + report.CHANGE_NOTE,
            )
            # an SVG image, not st.metric's chart_data: that loads Vega (775 KB) in the browser,
            # about 0.8 s of Home's first load on a 2-core machine for six small lines
            spark = charts.sparkline_html(m["metric"], m["weekly"])
            if spark:
                st.html(spark)
            # the status word on its own line: beside the caption, a 1280-px screen cut it to "A…"
            status_badge(m["status"], m["threshold"])
            ended = (f" · last {(card['recent_to'] - card['recent_from']).days + 1} days: "
                     f"{charts.fmt_value(m['metric'], m['recent'])} {charts.status_text(m['recent_status'])}"
                     if m.get("recent_status") not in (None, "n/a", m["status"]) else "")
            st.caption(f"{charts.threshold_short(m['metric'])}" + ended + (f" · {m['note']}" if m["note"] else ""))
            extra = _extra_line(m["metric"], card.get("row"))
            if extra:
                st.caption(extra)
            if m["metric"] == "retention_delta_pts" and m["value"] is not None:
                against = report.retention_vs_holdout(da.bridge_report(card["quarter"]).get("causal"),
                                                      bool(card.get("to_date")))
                if against:
                    st.caption(against)
            warning_caption(m["metric"])


def warning_caption(metric: str, prefix: str = "") -> None:
    """The served run's gate warnings on a figure's inputs, in orange words with the details
    on hover; nothing when there are none. The row counts come from the warned run's ingest
    summary, over the tables the figure reads."""
    warned = da.metric_warnings(metric)
    if not warned:
        return
    runs = {w.get("run_id") for w in warned}
    ingest = da.ingest_summary(run_id=runs.pop()) if len(runs) == 1 else None
    st.caption(f"{prefix}:orange[{report.warning_effect(warned, ingest, da.metric_inputs(metric))}]",
               help=report.warning_help(warned))


def _extra_line(metric: str, row: dict | None) -> str | None:
    if not row:
        return None
    if metric == "hr" and row.get("hr_coverage") is not None:
        t3 = row.get("tier3_hr")
        return (f"coverage {100 * row['hr_coverage']:.0f}% adjudicated"
                + (f" · tier-3 (behavioral) HR {100 * t3:.1f}%, reported beside" if t3 is not None else ""))
    if metric == "retention_delta_pts":
        n_ai, n_non = row.get("rd_n_ai") or 0, row.get("rd_n_non_ai") or 0
        if row.get("retention_delta_pts") is None:
            return (f"insufficient data: AI users {n_ai:,}, non-AI users {n_non:,} "
                    f"(each group needs ≥ {config.metric_contract()['retention']['min_group_size']})")
        return (f"95% CI [{row['rd_ci_low']:+.1f}, {row['rd_ci_high']:+.1f}] pts · "
                f"AI users {n_ai:,}, non-AI {n_non:,} · the weekly line runs lower: a week's non-AI users "
                "include regular AI users on their off-days")
    if metric == "tta_p50_s" and row.get("tta_p90_s") is not None:
        return f"p90 {row['tta_p90_s']:.1f} s · {row.get('tta_n') or 0:,} valid outputs with verification"
    if metric == "tcr":
        return f"{row.get('interactions') or 0:,} interactions"
    return None


def scorecard_frame(card: dict) -> pl.DataFrame:
    """The scorecard as a table (numbers as text in display units, status in words)."""
    return pl.DataFrame([{
        "metric": f"{charts.SHORT[m['metric']]} — {m['label']}",
        "value": charts.fmt_value(m["metric"], m["value"]),
        "status": charts.status_text(m["status"]),
        "threshold": charts.threshold_short(m["metric"]),
        f"previous ({card.get('previous_quarter') or 'n/a'})": charts.fmt_value(m["metric"], m["previous"]),
        "change": (f"{charts.fmt_change(m['metric'], m['change'])} ({charts.change_word(m['metric'], m['change'])})"
                   if charts.fmt_change(m["metric"], m["change"]) else "n/a"),
    } for m in card["metrics"]])


def chart(fig: go.Figure, name: str, key: str, data: pl.DataFrame | None = None) -> None:
    """A chart with its PNG download (rendered on click) and, when given, the CSV of its numbers."""
    cfg = dict(charts.PLOTLY_CONFIG)
    cfg["toImageButtonOptions"] = {**cfg["toImageButtonOptions"], "filename": slug(name)}
    st.plotly_chart(fig, config=cfg, key=f"chart_{key}", theme=None)  # our template; skips the theme pass
    c1, c2, _ = st.columns([1, 1, 4])
    with c1:
        st.download_button("PNG", data=lambda f=fig: report.png_bytes(f), file_name=f"{slug(name)}.png",
                           mime="image/png", icon=":material/image:", key=f"png_{key}", on_click="ignore")
    if data is not None:
        with c2:
            st.download_button("CSV", data=da.to_csv(data), file_name=f"{slug(name)}.csv", mime="text/csv",
                               icon=":material/download:", key=f"csv_{key}", on_click="ignore")


# a table of at most this many rows is shown whole (static) rather than as a grid
STATIC_ROWS = 15


def table(df: pl.DataFrame, name: str, key: str, csv: pl.DataFrame | None = None, static: bool | str = False,
          max_chars: int = 400, **kw) -> None:
    """A table and its CSV download: the table itself, or `csv` (the same rows with every
    number in full) when the table shows them as text. `static`: a plain table whose cells
    wrap, for a few rows of words that must all be read at a 1280-px width (a Markdown
    table: the browser draws it without loading the grid's 1.5 MB of JavaScript, which
    delayed a page's first chart by about half a second); otherwise a scrollable grid that
    cuts long cells; "short": static up to STATIC_ROWS rows, a grid beyond. `max_chars`: a
    static cell's length (the CSV holds it whole); `kw` configures the grid only."""
    if static == "short":
        static = df.height <= STATIC_ROWS
    if static:
        st.markdown(markdown_table(df, max_chars))
    else:  # counts with thousands separators ("584,056"), unless the page configures the column
        ints = {c: st.column_config.NumberColumn(c, format="localized") for c, t in df.schema.items()
                if t.is_integer()}
        kw["column_config"] = {**ints, **(kw.get("column_config") or {})}
        st.dataframe(df, hide_index=True, key=f"table_{key}", **kw)
    st.download_button("CSV", data=da.to_csv(df if csv is None else csv), file_name=f"{slug(name)}.csv", mime="text/csv",
                       icon=":material/download:", key=f"csv_{key}", on_click="ignore")


# static tables (Markdown) at the grid's type size and a tighter padding: at 1280 px the audit
# history's ten columns ran past the page at the body's 16 px
TABLE_CSS = """<style>
[data-testid="stMarkdownContainer"] table { font-size: 0.875rem; }
[data-testid="stMarkdownContainer"] th, [data-testid="stMarkdownContainer"] td { padding: 0.4rem 0.5rem; }
</style>"""


def table_style() -> None:
    """The static tables' style, once per run (app.py): a style-only st.html takes no space."""
    st.html(TABLE_CSS)


def code_text(text: str) -> None:
    """A short block of code shown as written, monospaced and wrapping, without syntax
    colours: st.code loads a 1.5 MB highlighter in the browser, which ran before the page's
    first chart (Definitions: every metric's formula and SQL on first view). Long code
    that opens on demand keeps st.code."""
    st.html('<pre style="white-space: pre-wrap; margin: 0; padding: 0.75rem 1rem; border-radius: 0.5rem; '
            'background: #f6f7f9; font-family: \'Source Code Pro\', monospace; font-size: 0.85rem; '
            f'line-height: 1.5; color: #262730;">{html.escape(text)}</pre>')


# a cell that is a number as the tables print it: "+$7,250", "−0.0681 [−0.104, −0.0319]", "86.25%",
# "15,978 / 1,982" (right-aligned like a numeric column)
_NUMBER = re.compile(r"^[−+\-]?\$?\d[\d,.]*(\s?(%|pts|s|k|M))?( to [−+\-]?\$?\d[\d,.]*(k|M)?)?"
                     r"(\s?(\[[^\]]*\]|/ [\d,.]+))?( †)?$|^\[[−+\-]?\$?\d[^\]]*\]$")


def markdown_table(df: pl.DataFrame, max_chars: int = 400) -> str:
    """A frame as a Markdown table (st.markdown renders it as a plain HTML table whose cells
    wrap): no Arrow grid to load in the browser before the page's first chart. Text cells
    are shown as written (md_escape; line breaks as spaces; a sign kept on its number; cut
    at `max_chars`, the CSV holds them whole); numbers right-aligned, integers with
    thousands separators, floats without exponents and with a minus sign; an empty cell
    for a null, "—" for a number that is not finite. No columns: ""."""
    def cell(v, dtype) -> str:
        if v is None:
            return ""
        if dtype.is_integer():
            return f"{v:,}".replace("-", "−")
        if dtype.is_float():
            if not math.isfinite(v):
                return "—"
            return charts.fmt_num(v)
        text = re.sub(r"\s*(\r\n|\r|\n)\s*", " ", str(v)).strip()
        text = text if len(text) <= max_chars else text[:max_chars - 1] + "…"
        # a long config name (agent_cost_per_hour_usd) may wrap after its underscores, or it
        # pushes the table past the page (CSS overflow-wrap: anywhere instead broke "+$7,250"
        # and "−6.0" in two); ids (audit-…, runs) have no underscores and copy clean
        text = re.sub(r"\S{16,}", lambda m: m.group(0).replace("_", "_\u200b"), text)
        text = re.sub(r"([✔✓⚠✖○]) ", "\\1\u00a0", text)  # an icon stays with its word ("⚠ Amber")
        return keep_sign(md_escape(text))
    cols = list(df.schema.items())
    if not cols:
        return ""

    def numeric(name, dtype) -> bool:  # numbers, or text that is all numbers ("+$7,250", "0.357")
        if dtype.is_numeric():
            return True
        vals = [v for v in df[name].to_list() if v not in (None, "", "—", "n/a")] if dtype == pl.Utf8 else []
        return bool(vals) and all(_NUMBER.match(str(v)) for v in vals)
    head = "| " + " | ".join(md_escape(str(c)) for c, _ in cols) + " |"
    rule = "|" + "|".join("---:" if numeric(c, t) else "---" for c, t in cols) + "|"
    rows = ["| " + " | ".join(cell(v, t) for v, (_, t) in zip(r, cols)) + " |" for r in df.iter_rows()]
    return "\n".join([head, rule, *rows])


def md_escape(text: str) -> str:
    """Text shown as Markdown exactly as written: "$" would start a formula, "*" or "_"
    emphasis, "[…](…)" a link, ":red[…]" or ":smile:" Streamlit's colours and emoji, "<" and
    "&" HTML, "|" a table cell's end. (Backslash escapes any ASCII punctuation in CommonMark.)"""
    return re.sub(r"([\\`*_~$\[\]<>&:|])", r"\\\1", text)


def keep_sign(text: str) -> str:
    """A sign stays with its number when a cell wraps ("−$249,489", never "−" at a line's end):
    a word joiner (U+2060) between a sign and the "$" after it, where browsers may break."""
    return re.sub(r"([−+])(\\?\$)", "\\1\u2060\\2", text)


def unavailable(res: dict, what: str) -> bool:
    """Explain an optional part that is not there (module missing, estimate failed); True if so."""
    if res.get("available", True):
        return False
    st.info(f"{what}: {str(res.get('reason', 'not available')).rstrip('.')}.", icon=":material/info:")
    return True


def freshness_text(fresh: dict) -> str:
    """The stale-data banner (da.freshness) in words."""
    gap = (f", {fresh['days']} days before the as-of date of the run these figures come from "
           f"({fresh['as_of']})" if fresh.get("days") else "")
    last = fresh["last_date"]
    at_quarter_end = isinstance(last, dt.date) and last == da.quarter_end(da.quarter_start(last))
    partial = (f", and {da.quarter_label(da.quarter_start(last))}, which the data end inside, is partial"
               if isinstance(last, dt.date) and not at_quarter_end else "")
    return (f"**The data stop on {last}**{gap}: the figures cover dates through {last} only{partial}. "
            "A feed may have stopped: see Data quality.")
