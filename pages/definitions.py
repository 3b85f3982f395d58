"""Definitions: each metric's definition, formula, threshold and the SQL that computes it,
read from the project's own files when the page runs (never copied into the page)."""
import streamlit as st

from pages import ui
from pipelines import charts
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("Metric definitions")
defs = da.definitions()
st.caption(f"Read now from the project's files: the metric contract (version {defs['contract_version']}), "
           "sql/metrics/l6_daily.sql, sql/queries/l6.sql and pipelines/l6.py"
           + (f", definitions from {defs['spec_path']}" if defs["spec_path"] else "") + ".")
for key, text in defs["common"].items():
    st.markdown(f"- {text}")

values, label = None, ""
if da.warehouse_exists():
    try:
        p = da.periods()
        q = p["full_quarter"] or p["qtd"]
        if q:
            card = da.scorecard(q["label"])
            values = {m["metric"]: m["value"] for m in card["metrics"]}
            label = f" — {q['label']} marked"
    except da.WarehouseUnavailable:
        values = None
fig = charts.threshold_ladder(values, f"Thresholds at a glance{label}")
st.plotly_chart(fig, config=charts.PLOTLY_CONFIG, key="thresholds", theme=None)

for m in defs["metrics"]:
    with st.container(border=True):
        st.subheader(f"{charts.SHORT[m['metric']]} — {m['label']}")
        st.markdown(m["definition"])
        st.caption(f"Definition source: {m['definition_source']}")
        st.markdown(f"**Threshold** ({charts.unit_text(m['metric'])}): {charts.threshold_short(m['metric'])}; "
                    "amber in between." + (f" {m['note'][:1].upper()}{m['note'][1:]}." if m["note"] else ""))
        st.caption(m["threshold"])
        # formula and components at full width: in half-width columns the code wrapped mid-expression
        st.markdown("**Formula** (pipelines/l6.py)")
        ui.code_text("\n".join(m["formula"]) or "(not found)")
        st.markdown("**Additive components** (sql/metrics/l6_daily.sql)")
        ui.code_text(m["daily_sql"] or "(computed row-level in sql/queries/l6.sql)")
        sql_steps = st.expander("SQL steps in sql/queries/l6.sql", key=f"steps_{m['metric']}", on_change="rerun")
        if sql_steps.open:  # lazy: long SQL is sent and highlighted only when opened
            sql_steps.code(m["query_sql"] or "(none)", language="sql")

st.subheader("Source files")
for i, (name, text) in enumerate(defs["files"].items()):
    source = st.expander(name, key=f"file_{i}", on_change="rerun", bind="query-params")
    if source.open:
        source.code(text, language="sql" if name.endswith(".sql") else ("toml" if name.endswith(".toml") else "python"))
