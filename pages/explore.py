"""Explore: any L6 metric or bridge measure by period and slice, two slices side by side,
drill-down to the interactions, CSV of exactly what is shown. Every control lives in the
URL query string."""
import datetime as dt

import polars as pl
import streamlit as st

from pages import ui
from pipelines import charts, config, report
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("Explore the L6 metrics and the bridge")
info = ui.require_results()
if not info:
    st.stop()

opts = da.slice_options()
asked = ui.url_values()
QP = "query-params"
# the URL carries the short names (?metrics=TCR); the L6 metrics first, then the bridge measures
BY_SHORT = {charts.SHORT[m]: m for m in (*config.METRICS, *da.BRIDGE_MEASURES)}

# toggle buttons, not dropdowns: a dropdown's or a date picker's JavaScript loads before the
# first chart (docs/PERFORMANCE.md); the date pickers and the compare choices appear when asked for
picked = ui.pick_many("Metrics", list(BY_SHORT), key="metrics", buttons_up_to=len(BY_SHORT),
                      default=[charts.SHORT[m] for m in da.EXPLORE_DEFAULT_METRICS],
                      help="L6 metrics: " + "; ".join(f"{k}: {charts.label(m)}" for k, m in BY_SHORT.items()
                                                      if m in config.METRICS)
                      + ". Bridge measures (behavior, operations, P&L): "
                      + "; ".join(f"{k}: {charts.label(m)}" for k, m in BY_SHORT.items()
                                  if m not in config.METRICS) + ".")
metrics = [BY_SHORT[k] for k in picked]
c2, c3, _ = st.columns([2.4, 1, 2.6])  # at 1280 px the four grain buttons fit
grain = c2.segmented_control("Period grain", list(da.GRAINS), default="week", key="grain", bind=QP,
                             required=True) or "week"
kind = c3.segmented_control("Chart", ["line", "bar"], default="line", key="chart", bind=QP, required=True) or "line"

with st.expander("Slices and filters", expanded=True, icon=":material/filter_alt:"):
    filters = {}
    # each slice's column as wide as its choices, as many to a row as fit
    for row in ui.button_rows({s: opts[s] for s in da.SLICES}):
        for col, s in zip(st.columns([ui.button_width(opts[s]) for s in row]), row):
            with col:
                filters[s] = ui.pick_many(
                    da.SLICE_LABELS[s], opts[s], key=s,
                    help=(f"“{da.NULL_LABEL}”: the rows with no {da.SLICE_LABELS[s].lower()} (users outside the "
                          "experiment have no experiment group)." if da.NULL_LABEL in opts[s] else None))
    if "dates" not in st.session_state and any(k in asked for k in ("from", "to")):
        st.session_state["dates"] = True  # a link with dates opens the date pickers
    t1, t2, t3 = st.columns([1.1, 1.3, 2.6], vertical_alignment="center")
    dates_on = t1.toggle("Limit the dates", key="dates", bind=QP, help="Off: the whole data span.")
    compare = t2.toggle("Compare two slices", key="compare", bind=QP,
                        help="Draw the view for two values of one slice side by side, on shared axes.")
    t3.caption(f"Data {info['first_date']} → {info['last_date']}. A slice with nothing picked takes all of its "
               "values; the URL keeps every choice, to share or reopen the view.")
    date_from = date_to = None
    if dates_on:
        d1, d2, _ = st.columns([1, 1, 2])
        date_from = d1.date_input("From (UTC date)", value=None, min_value=info["first_date"],
                                  max_value=info["last_date"], key="from", bind=QP)
        date_to = d2.date_input("To (UTC date)", value=None, min_value=info["first_date"],
                                max_value=info["last_date"], key="to", bind=QP)
    if compare:
        cmp_by = ui.pick_one("Slice to compare", list(da.SLICES), da.SLICES[0], key="cmp_by",
                             format_func=da.SLICE_LABELS.get)
        values = opts[cmp_by] or ["(none)"]
        k3, k4 = st.columns(2)
        with k3:
            cmp_a = ui.pick_one("Left", values, values[0], key="cmp_a")
        with k4:
            cmp_b = ui.pick_one("Right", values, values[min(1, len(values) - 1)], key="cmp_b")
taken = {"metrics": picked, "grain": [grain], "chart": [kind], **{s: filters[s] for s in da.SLICES},
         "from": [str(date_from)] if date_from else [], "to": [str(date_to)] if date_to else []}
if compare:
    taken["cmp_by"] = [da.SLICE_LABELS[cmp_by]]  # the link names it by label
filters = {k: v for k, v in filters.items() if v}

ui.explain_ignored_url_values(asked, taken)
if compare and cmp_by in filters:
    st.caption(f"Compare replaces the {da.SLICE_LABELS[cmp_by].lower()} filter ({', '.join(filters[cmp_by])}) "
               f"with its two values: {cmp_a} and {cmp_b}.")
if compare and cmp_a == cmp_b:
    st.warning(f"Left and right are the same {da.SLICE_LABELS[cmp_by].lower()} ({cmp_a}): pick two different "
               "values to compare" + ("; this slice has only one value here." if len(values) < 2 else "."),
               icon=":material/compare_arrows:")
if date_from and date_to and date_from > date_to:
    st.warning("The From date is after the To date: nothing can match. Swap them.", icon=":material/warning:")
    st.stop()
if not metrics:
    st.info("Pick at least one metric above.", icon=":material/info:")
    st.stop()

# ------------------------------------------------------------------ data
if compare:
    sides = [(f"{da.SLICE_LABELS[cmp_by]} = {v}", {**filters, cmp_by: [v]}) for v in (cmp_a, cmp_b)]
else:
    sides = [("", filters)]
frames = [(name, f, da.explore(grain, f, date_from, date_to, metrics=metrics)) for name, f in sides]

filter_words = ", ".join(f"{da.SLICE_LABELS[k]}: {', '.join(v)}" for k, v in filters.items()) or "all interactions"
scope = f"{filter_words}; {date_from or info['first_date']} → {date_to or info['last_date']}"
st.caption(f"Showing {scope}; by {charts.GRAIN_WORDS[grain]}.")
for note in (report.partial_periods_note(grain, [d for _, _, df in frames for d in df["period_start"].to_list()],
                                         info["first_date"], info["last_date"], da.period_bounds, date_from, date_to),
             report.cpvo_slice_note(metrics, [da.SLICE_LABELS[k] for k in filters]
                                    + ([da.SLICE_LABELS[cmp_by]] if compare else []))):
    if note:
        st.caption(note)
if "retention_delta_pts" in metrics and grain in ("day", "week"):
    st.caption(f"RΔ by {grain}: a period's non-AI users are those who did not use the AI feature in that "
               f"{grain}, regular AI users among them on their off-days, so a short period's RΔ runs smaller "
               "than a quarter's; read RΔ against its thresholds by month or quarter.")

if all(df.is_empty() for _, _, df in frames):
    st.info("No interactions match this slice and date range, so there is nothing to chart. "
            "Widen the filters or the dates.", icon=":material/search_off:")
    st.stop()

# ------------------------------------------------------------------ charts
# one figure: a row per metric, a column per side (small multiples draw far faster in a
# browser than one Plotly chart per metric)
support_cut = [m for m in metrics if m in da.SUPPORT_MEASURES
               and not any(da.support_applies(f) for _, f, _ in frames)]
fig = charts.metric_panels([(name, df) for name, _, df in frames], metrics, grain, kind=kind,
                           notes={m: da.SUPPORT_NOTE for m in support_cut}, scope=scope)
ui.chart(fig, f"explore_{grain}_{ui.slug(filter_words)}", key="explore")
if support_cut:
    st.caption(f"{', '.join(charts.SHORT[m] for m in support_cut)}: {da.SUPPORT_NOTE}")
for m in metrics:
    ui.warning_caption(m, prefix=f"{charts.SHORT[m]}: ")
if "retention_delta_pts" in metrics:
    for name, _, df in frames:
        if not df.is_empty() and df["retention_delta_pts"].null_count():
            st.caption(f"RΔ{' (' + name + ')' if name else ''} is insufficient data in "
                       f"{df['retention_delta_pts'].null_count()} of {df.height} periods: each group needs at least "
                       f"{config.metric_contract()['retention']['min_group_size']} users whose 7-day window "
                       "has ended (see RΔ AI users and RΔ non-AI users in the table).")

# ------------------------------------------------------------------ the numbers shown
extra = {"hr": ["hr_coverage"], "tta_p50_s": ["tta_p90_s", "tta_n"],
         "retention_delta_pts": ["rd_ci_low", "rd_ci_high", "rd_n_ai", "rd_n_non_ai"],
         "support_contacts_per_1k": ["tickets"], "corrections_escalations_per_100": ["ce_n"]}
l6_shown = [m for m in metrics if m in config.METRICS]
columns = ["period_start", "interactions"]
for m in metrics:
    columns += [m, *([f"{m}_status"] if m in l6_shown else []), *extra.get(m, [])]
columns = list(dict.fromkeys(columns))
shown = pl.concat([
    df.select(columns).with_columns(pl.lit(name or "all").alias("slice")).select(["slice", *columns])
    for name, _, df in frames if not df.is_empty()])
shown = shown.with_columns(pl.col(f"{m}_status").map_elements(charts.status_text, return_dtype=pl.Utf8)
                           for m in l6_shown)
if not compare:
    shown = shown.drop("slice")
fmt = {"share": "percent", "USD": "dollar", "seconds": "%.2f s", "per 100 queries": "%.2f", "points": "%+.2f pts",
       "hours": "%.1f h", "valid outputs": "%d", "minutes per task": "%.2f min"}
fmt_of = {m: "$%.4f" if m == "cpvo_usd" else fmt.get(charts.unit(m), "%.2f") for m in metrics}  # CPVO is cents
# a percent column takes its decimals from `step`: without it Streamlit trims them ("2.6%" beside "2.61%")
colcfg = {m: st.column_config.NumberColumn(charts.SHORT[m], format=fmt_of[m],
                                           step=0.0001 if fmt_of[m] == "percent" else None,
                                           help=f"{charts.label(m)} ({charts.unit_text(m)})")
          for m in metrics}
colcfg["period_start"] = st.column_config.DateColumn("period start", format="YYYY-MM-DD")
colcfg["hr_coverage"] = st.column_config.NumberColumn("HR coverage", format="percent", step=0.0001)
colcfg["tta_p90_s"] = st.column_config.NumberColumn("TTA p90", format="%.2f s")
colcfg["rd_ci_low"] = st.column_config.NumberColumn("RΔ 95% CI low", format="%+.2f pts")
colcfg["rd_ci_high"] = st.column_config.NumberColumn("RΔ 95% CI high", format="%+.2f pts")
colcfg["ce_n"] = st.column_config.NumberColumn("corrected or escalated", format="localized")
colcfg["rd_n_ai"] = st.column_config.NumberColumn("RΔ AI users", format="localized",
                                                  help="Users of the AI feature in the period whose 7-day window has ended")
colcfg["rd_n_non_ai"] = st.column_config.NumberColumn("RΔ non-AI users", format="localized",
                                                      help="Active users who did not use the AI feature in the period "
                                                           "and whose 7-day window has ended")
colcfg["tta_n"] = st.column_config.NumberColumn("TTA outputs", format="localized",
                                                help="Valid outputs with a verification time (TTA's sample)")
colcfg["tickets"] = st.column_config.NumberColumn("tickets", format="localized")
colcfg["interactions"] = st.column_config.NumberColumn("interactions", format="localized")  # 13,170
colcfg.update({f"{m}_status": st.column_config.TextColumn(f"{charts.SHORT[m]} status") for m in l6_shown})
bridge_shown = [m for m in metrics if m not in config.METRICS]
st.subheader("The numbers behind the charts")
if bridge_shown:
    st.caption("Bridge measures describe the selected interactions, and the support tickets of the selected "
               "users who can use the AI feature (every experiment group but the holdout, unless the slice "
               "names groups); infra cost is shared out by each feature's interactions. No holdout "
               "counterfactual here: the Bridge page attributes dollars to the AI feature per quarter "
               "(treatment population). " + da.bridge_assumptions_note(bridge_shown))
# on demand: the grid's JavaScript (about 0.5 s of a first load, docs/PERFORMANCE.md) loads when opened
numbers = st.expander(f"The table: {shown.height:,} rows — open it to read the numbers, select a row to see its "
                      "interactions", key="numbers", on_change="rerun", bind=QP, icon=":material/table:")
sel = None
if numbers.open:
    with numbers:
        st.caption("Rates are fractions (shown as %), RΔ in points, TTA in seconds, CPVO in USD — the same numbers as "
                   "`python -m pipelines l6`. Select a row to see its interactions below.")
        sel = st.dataframe(shown, hide_index=True, column_config=colcfg, key="l6_table", on_select="rerun",
                           selection_mode="single-row")
st.download_button("CSV of this table", data=da.to_csv(shown), file_name=f"l6_{grain}_{ui.slug(filter_words)}.csv",
                   mime="text/csv", icon=":material/download:", key="csv_l6", on_click="ignore")

# ------------------------------------------------------------------ drill-down
st.subheader("Drill down: the interactions behind a number")
period_opts = ["all"] + [str(d) for d in frames[0][2]["period_start"].to_list()]
rows = (sel.selection.rows if sel is not None and hasattr(sel, "selection") else []) or []
if rows:
    picked = str(shown["period_start"][rows[0]])
    if st.session_state.get("_drill_sel") != picked and picked in period_opts:
        st.session_state["_drill_sel"] = picked
        st.session_state["drill"] = picked
        st.session_state["drill_on"] = True  # a selected row opens the drill-down
    if compare:  # a row of the right-hand slice drills into that slice
        st.session_state["_drill_side"] = next(
            (i for i, (name, _, _) in enumerate(frames) if name == shown["slice"][rows[0]]), 0)
else:
    st.session_state.pop("_drill_sel", None)  # selecting the same row again reopens it
if "drill_on" not in st.session_state and any(k in asked for k in ("drill", "outcome", "verdict", "page")):
    st.session_state["drill_on"] = True  # a link into the drill-down opens it
# on demand: the paged table of interactions (a second grid and its controls) is built only when
# asked for, so the page's first load draws the chart sooner
if not st.toggle("Show the interactions", key="drill_on", bind=QP,
                 help="Or select a row of the table above: its period's interactions open here."):
    st.caption("Switch this on, or select a row of the table above, to page through the interactions behind the "
               "numbers: their outcome, verdicts and interventions.")
    st.stop()
e1, e2, e3, e4 = st.columns([1.3, 1, 1, 0.8], vertical_alignment="bottom")
drill = e1.selectbox(f"Period ({charts.GRAIN_WORDS[grain]} starting)", period_opts, key="drill", bind=QP)
outcome = e2.selectbox("Outcome", ["any", "completed", "corrected", "fallback", "escalated", "abandoned"],
                       key="outcome", bind=QP)
verdict = e3.selectbox("Final verdict", list(da.VERDICTS), key="verdict", bind=QP)
page = e4.number_input("Page", min_value=1, value=1, step=1, key="page", bind=QP)
if drill == "all":
    d_from, d_to = date_from, date_to
else:
    p0, p1 = da.period_bounds(dt.date.fromisoformat(drill), grain)
    d_from, d_to = max(p0, date_from) if date_from else p0, min(p1, date_to) if date_to else p1
side = st.session_state.get("_drill_side", 0) if compare else 0
side = side if side < len(frames) else 0
drill_filters = frames[side][1]
res = da.interactions_page(drill_filters, d_from, d_to, page=int(page), page_size=50,
                           outcome=None if outcome == "any" else outcome, verdict=verdict)
if res["total"] == 0:
    st.info("No interactions match this period, outcome and verdict.", icon=":material/search_off:")
else:
    st.caption(f"{res['total']:,} interactions · page {res['page']:,} of {res['pages']:,} (50 per page), oldest first"
               + (f" · page {int(page):,} was asked: it shows the last" if int(page) > res["pages"] else "")
               + (f" · {frames[side][0]} (select a row of the table above to drill into either slice)"
                  if compare else ""))
    st.dataframe(res["rows"], hide_index=True, key="drill_table",
                 column_config={"ts": st.column_config.DatetimeColumn("ts (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                                "cost_usd": st.column_config.NumberColumn("cost (USD)", format="%.5f"),
                                "tta_s": st.column_config.NumberColumn("TTA (s)", format="%.2f")})
    st.download_button("CSV of this page", data=da.to_csv(res["rows"]),
                       file_name=f"interactions_{drill}_p{res['page']}.csv", mime="text/csv",
                       icon=":material/download:", key="csv_drill", on_click="ignore")
