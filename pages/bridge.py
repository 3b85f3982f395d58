"""Bridge: every chain with each edge's method, estimate and interval, the consistency note,
and what-if sliders that move an AI metric and show the dollars move through the chain."""
import polars as pl
import streamlit as st

from pages import ui
from pipelines import charts, config, report
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("KPI bridge: AI metrics → dollars")
info = ui.require_results()
if not info:
    st.stop()

p = da.periods()
bq = da.bridge_quarters()
quarters = bq or [q["label"] for q in p["quarters"] if q["complete"]] or [q["label"] for q in p["quarters"]]
default = p["full_quarter"]["label"] if p["full_quarter"] and p["full_quarter"]["label"] in quarters else quarters[-1]
quarter = ui.pick_one("Quarter", sorted(quarters), default, key="quarter")
rep = da.bridge_report(quarter)
if ui.unavailable(rep, "The KPI bridge cannot be shown"):
    st.caption("Each chain maps an AI metric to a P&L line: AI metric → user behavior → operations → dollars "
               "(SPEC §4). The L6 metrics themselves are on Home, QBR and Explore.")
    st.stop()

st.caption(f"Assumptions version **{rep.get('assumptions_version', '?')}** (config/assumptions.toml) · bridge config "
           f"{rep.get('config_version', '?')} · causal = treatment vs holdout (intention-to-treat); observational = "
           "dose-response across periods and slices, conversions and assumptions · intervals are 95% · "
           f"{rep.get('sign_convention', '')}.")
split = report.impact_split(rep)
if split["total"] is not None:
    st.metric(f"AI impact, {quarter} (all chains)", charts.fmt_usd(split["total"], True))
    st.caption(" · ".join(part for part in (
        f"{charts.fmt_usd(split['against_holdout'], True)} measured against the holdout (causal chains)"
        if split["against_holdout"] is not None else "",
        f"{charts.fmt_usd(split['treatment_only'], True)} on the treatment population alone (P&L lines the "
        "holdout, never offered the AI, has none of)" if split["treatment_only"] is not None else "") if part))

# ------------------------------------------------------------------ holdout comparison
causal = rep.get("causal") or {}
if causal:
    st.subheader("Treatment vs holdout (causal, intention-to-treat)")
    ui.table(report.causal_frame(rep), f"bridge_causal_{quarter}", key="causal",
             csv=report.causal_frame(rep, for_csv=True), static=True)
    st.caption(report.causal_caption(rep))

# ------------------------------------------------------------------ chains
chains = rep.get("chains") or []
st.subheader("Chains")
if not chains:
    st.info("The bridge report holds no chains for this quarter.", icon=":material/info:")
else:
    ui.table(report.chains_print(rep)[0], f"bridge_chains_{quarter}", key="chains_all", static=True,
             csv=report.chains_frame(rep))  # on screen as in the PDF: whole dollars, a 1280-px width
    st.caption(" ".join(filter(None, (report.sampling_note(chains), "Open a chain below for its diagram (each "
                                      "edge's method, estimate and interval) and its consistency note."))))
# one tab per chain, only the open one drawn (the URL keeps it): every chain's diagram and
# table at once cost the browser seconds on first load
chain_tabs = st.tabs([report.chain_tab_label(c) for c in chains], key="bridge_chain", on_change="rerun",
                     bind="query-params") if chains else []
for i, (c, tab) in enumerate(zip(chains, chain_tabs)):
    if not tab.open:
        continue
    with tab, st.container(border=True):
        st.markdown(f"#### {c.get('name')}")
        m1, m2 = st.columns([1, 2])
        m1.metric(f"Impact vs holdout, {quarter}" if report.against_holdout(c) else
                  f"Impact (treatment only), {quarter}", charts.fmt_usd(c.get("usd_impact"), True),
                  help=report.ci_caveat(c) or None)
        m1.caption(f"{report.ci_words(c)}: {charts.fmt_usd_range(c.get('usd_ci_low'), c.get('usd_ci_high'))}"
                   + (f" · {c['impact_method']}" if c.get("impact_method") else ""))
        if c.get("usd_implied") is not None:
            m1.caption(f"Implied by the chain's edges: {charts.fmt_usd(c['usd_implied'], True)} "
                       f"[{charts.fmt_usd_range(c.get('usd_implied_ci_low'), c.get('usd_implied_ci_high'), sep=', ')}]")
        with m2:
            if c.get("consistent") is False and c.get("gap_material") is False:
                st.info(c["note"], icon=":material/info:")
            elif c.get("consistent") is False:
                st.warning(f"**Inconsistent**: the chain's implied dollars and {report.measured_words(c)} disagree "
                           f"beyond their intervals. {report.consistency_detail(c, sentence=True)}",
                           icon=":material/warning:")
            elif c.get("consistent"):
                st.success(f"**Consistent** with {report.measured_words(c)}: {report.consistency_detail(c)}",
                           icon=":material/check_circle:")
            elif c.get("note"):
                st.info(c["note"], icon=":material/info:")
        ui.chart(charts.chain_diagram(c, f"{c.get('name')} — {quarter}"), f"chain_{c.get('name')}_{quarter}",
                 key=f"chain_{i}")
        st.caption(report.diagram_caption(c))
        ui.table(report.steps_frame(c), f"chain_steps_{c.get('name')}_{quarter}", key=f"steps_{i}", static=True,
                 csv=report.steps_frame(c, for_csv=True))

# ------------------------------------------------------------------ what-if
st.subheader("What if?")
if chains:
    names = [c.get("name") for c in chains]
    chain_name = ui.pick_one("Chain", names, names[0], key="wi_chain")
    w2 = st.columns([2, 1])[0]  # a slider across the whole page is hard to move by small steps
    chain = chains[names.index(chain_name)]
    metric = chain.get("ai_metric")
    current = chain.get("ai_metric_value")
    if current is None:
        card = da.scorecard(quarter)
        current = next((m["value"] for m in card["metrics"] if m["metric"] == metric), None)
    if metric not in config.METRICS or current is None:
        st.info(f"The chain's AI metric ({metric}) has no value for {quarter}, so it cannot be moved.",
                icon=":material/info:")
    else:
        s = charts.scale(metric)
        sl = charts.what_if_slider(metric, current)
        with w2:
            new = st.slider(f"Move {charts.SHORT.get(metric, metric)} ({charts.unit_text(metric)}); now {charts.fmt_value(metric, current)}",
                            min_value=sl["min"], max_value=sl["max"], value=sl["value"], step=sl["step"],
                            format=sl["format"], key=f"wi_{metric}")
        moved = new != sl["value"]
        new = new if moved else current * s  # at rest: the metric's own value, not its rounding
        res = da.what_if(quarter, chain_name, new / s)
        if not ui.unavailable(res, "The what-if cannot be computed"):
            if not moved:
                st.info("Move the slider: the chain shows how the change travels to dollars.", icon=":material/tune:")
            # the figure and the diagram in full width: beside the tile, at 1280 px, its boxes
            # overlapped and the last was cut off
            r1, r2 = st.columns([1, 3], vertical_alignment="center")
            r1.metric("Dollars moved (P&L)", charts.fmt_usd(res.get("usd_change"), True),
                      help="positive = a saving or revenue; 95% CI from the chain's edge intervals")
            r2.caption(report.what_if_interval(res) + (f" {res['note'][:1].upper()}{res['note'][1:]}."
                                                       if res.get("note") else ""))
            ui.chart(charts.what_if_chart(res, f"What-if, {quarter}: {charts.SHORT.get(metric, metric)} "
                                               f"{charts.fmt_value(metric, current)} → {charts.fmt_value(metric, new / s)}"),
                     f"what_if_{chain_name}", key="what_if",
                     data=pl.DataFrame([{k: nd.get(k) for k in ("node", "label", "unit", "current", "new", "change",
                                                                "ci_low", "ci_high")} for nd in res.get("nodes") or []]))
