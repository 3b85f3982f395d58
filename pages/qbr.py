"""QBR: one quarter's L6 scorecard, the KPI bridge in dollars, HR by domain, summary, export."""
from pathlib import Path

import polars as pl
import streamlit as st

from pages import ui
from pipelines import charts, report
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("Quarterly business review")
info = ui.require_results()
if not info:
    st.stop()

p = da.periods()
quarters = {q["label"]: q for q in p["quarters"]}
default = p["full_quarter"]["label"] if p["full_quarter"] else next(iter(quarters))
top = st.columns([1, 2], vertical_alignment="bottom")
with top[0]:
    quarter = ui.pick_one("Quarter", sorted(quarters), default, key="quarter",  # oldest to newest
                          help="The newest quarter may be partial (to date).")
q = quarters[quarter]
card = da.scorecard(quarter)
if not card["has_data"]:
    st.info(f"No interactions in {quarter}: pick another quarter.", icon=":material/info:")
    st.stop()

fresh = da.freshness()
if fresh and card["to_date"]:
    st.warning(ui.freshness_text(fresh), icon=":material/schedule:")

bridge = da.bridge_report(quarter)
hr_df = da.hr_by_domain(q["start"], q["end"])
bullets = report.summary_bullets(card, bridge, hr_df)
audit_line = report.audit_bullet(da.audit_for_quarter(quarter), da.audit_score_range())
if audit_line:
    bullets.append(audit_line)
weeks = da.weeks_of(quarter)
sc_df = ui.scorecard_frame(card)

# ---------------------------------------------------------------- scorecard + summary
st.subheader(f"L6 scorecard — {quarter}" + (f" (to date, through {card['data_to']})" if card["to_date"] else ""))
ui.scorecard_metrics(card, key="qbr")
with st.expander("Scorecard as a table", expanded=False):
    ui.table(sc_df, f"l6_scorecard_{quarter}", key="scorecard", static=True)  # every column at 1280 px
    st.caption(report.CHANGE_NOTE)

st.subheader("Summary")
st.markdown("\n".join(f"- {ui.keep_sign(b)}" for b in bullets))  # a sign stays on its number

# ---------------------------------------------------------------- KPI bridge
st.subheader("KPI bridge in dollars")
# the PDF's chart pages: (heading, figure), None when the chart's own title heads its page
figures: list = [(None, charts.weekly_trends(weeks, f"Weekly L6 trend — {quarter}"))]
tables: list = []
if not ui.unavailable(bridge, "The KPI bridge is not shown"):
    st.caption("Dollar figures are P&L impact: + is a saving or revenue, − a cost (in the waterfall, green bars "
               "raise the AI's dollars, red bars lower them, blue is the net change). They use business assumptions "
               f"version **{bridge.get('assumptions_version', '?')}** (config/assumptions.toml).")
    wf = report.waterfall_steps(bridge)
    prev = wf["from_quarter"] or card.get("previous_quarter") or "previous quarter"
    wf_title = f"Quarter-over-quarter change in dollars by chain, {prev} → {quarter}"
    if wf["start"] and wf["end"]:
        wf_title += (f"<br><sup>AI impact, all chains: {prev} {charts.fmt_usd(wf['start']['usd'])} → "
                     f"{quarter} {charts.fmt_usd(wf['end']['usd'])}</sup>")
    if wf["steps"]:
        fig_wf = charts.waterfall(wf["steps"], wf_title)
        wf_df = pl.DataFrame(wf["steps"], schema={"label": pl.Utf8, "chain": pl.Utf8, "usd": pl.Float64,
                                                  "ci_low": pl.Float64, "ci_high": pl.Float64,
                                                  "via_ai_metric": pl.Float64, "other": pl.Float64})
        ui.chart(fig_wf, f"bridge_waterfall_{quarter}", key="waterfall", data=wf_df)
        figures.append((None, fig_wf))
    else:  # an empty chart with a PNG button said nothing
        st.info(f"No quarter-over-quarter waterfall for {quarter}: the bridge has no earlier quarter to "
                "compare it with.", icon=":material/info:")
    chains = bridge.get("chains") or []
    if chains:
        for c in chains:
            if report.materially_inconsistent(c):
                st.warning(f"**{c.get('name')}**: the chain's implied dollars and {report.measured_words(c)} "
                           f"disagree beyond their intervals. {report.consistency_detail(c, sentence=True)}",
                           icon=":material/warning:")
        chains_table, chains_notes = report.chains_print(bridge)  # whole dollars, a 1280-px width
        ui.table(chains_table, f"bridge_chains_{quarter}", key="chains", csv=report.chains_frame(bridge), static=True)
        if report.SAMPLING_ONLY_NOTE in chains_notes:
            st.caption(report.SAMPLING_ONLY_NOTE)
        if [n for n in chains_notes if n != report.SAMPLING_ONLY_NOTE]:
            with st.expander("Each chain's consistency note"):
                st.markdown("\n".join(f"- {n}" for n in chains_notes if n != report.SAMPLING_ONLY_NOTE))
        # on demand (the URL keeps it), one tab per chain and only the open one drawn: the
        # diagrams cost a first load about 0.3 s on a 2-core machine; the PDF holds every chain
        diagrams = st.expander("Each chain's diagram: AI metric → behavior → operations → P&L (each edge's "
                               "estimate, 95% interval and method)", key="diagrams", on_change="rerun",
                               bind="query-params", icon=":material/account_tree:")
        chain_tabs = []
        if diagrams.open:
            with diagrams:
                chain_tabs = st.tabs([report.chain_tab_label(c) for c in chains], key="qbr_chain",
                                     on_change="rerun", bind="query-params")
        for i, c in enumerate(chains):
            # drawn when needed: the page draws the open tab's chain, the PDF every chain
            draw = lambda c=c: charts.chain_diagram(c, f"{c.get('name')} — {quarter}")  # noqa: E731
            figures.append((None, draw))
            if chain_tabs and chain_tabs[i].open:
                fig_c = draw()
                with chain_tabs[i]:
                    ui.chart(fig_c, f"chain_{c.get('name')}_{quarter}", key=f"chain_{i}",
                             data=report.steps_frame(c, for_csv=True))
                    st.caption(report.diagram_caption(c))
        tables.append(("KPI bridge chains (USD, 95% CI)", chains_table, chains_notes))

# ---------------------------------------------------------------- HR by domain
st.subheader("Hallucination rate by domain")
fig_hr = charts.hr_by_domain(hr_df, f"Hallucination rate by domain — {quarter}<br>"
                                    "<sup>95% intervals; 3% green bar, 5% red line</sup>")
ui.chart(fig_hr, f"hr_by_domain_{quarter}", key="hr_domain", data=report.hr_domains_frame(hr_df, for_csv=True))
figures.append((None, fig_hr))
tables.insert(0, (f"Hallucination rate by domain — {quarter}", report.hr_domains_frame(hr_df)))

# ---------------------------------------------------------------- export
with top[1]:
    subtitle = (f"Data {p['first_date']} → {p['last_date']} (UTC) · warehouse {Path(info['path']).name} · "
                + (f"bridge assumptions {bridge.get('assumptions_version')} · dollars are P&L impact: + a saving or "
                   "revenue, − a cost" if bridge.get("available") else
                   "KPI bridge not available"))
    st.download_button("Download the QBR as PDF", icon=":material/picture_as_pdf:", type="primary",
                       data=lambda: report.qbr_pdf(quarter, sc_df, bullets,
                                                   [(t, f() if callable(f) else f) for t, f in figures], tables,
                                                   subtitle=subtitle),
                       file_name=f"kpi_bridge_qbr_{quarter}.pdf", mime="application/pdf", key="pdf",
                       on_click="ignore")
