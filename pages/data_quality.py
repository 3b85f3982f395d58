"""Data quality: the latest run's gate report and the history, per stage: failing
expectations, observed values, sample bad values, quarantine counts by reason."""
import polars as pl
import streamlit as st

from pages import ui
from pipelines import charts, report
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("Data quality")
if not da.warehouse_exists():
    ui.require_results()
    st.stop()

runs = da.runs()
if runs.is_empty():
    st.info("No runs are recorded in this warehouse yet.", icon=":material/info:")
    st.stop()

last = runs.row(0, named=True)
c1, c2, c3 = st.columns(3)
c1.metric("Latest run", report.RUN_STATUS_WORDS.get(last["status"], last["status"]), help=f"run {last['run_id']}")
c2.metric("Failed stage", last["failed_stage"] or "none")
c3.metric("Started (UTC)", str(last["started_at"])[:16])
st.caption(f"Run `{last['run_id']}` · command `{last['command']}` · source `{last['source']}`")
if last["status"] != "success" and last["message"]:
    st.error(last["message"], icon=":material/error:")

# ------------------------------------------------------------------ gate report
st.subheader("Gate report of the latest run")
rep = da.gate_report()
if not ui.unavailable(rep, "No gate report"):
    stages = rep.get("stages") or []
    overall = "✔ every critical expectation passed" if rep.get("success") else "✖ a critical expectation failed"
    st.markdown(f"Run `{rep.get('run_id')}`: **{overall}**.")
    details = da.gate_results(rep.get("run_id"))
    samples = {}
    if not details.is_empty() and "sample_values" in details.columns:
        for r in details.filter(~pl.col("success") & pl.col("sample_values").is_not_null()).iter_rows(named=True):
            samples[(r["suite"], r["expectation"], r["column_name"])] = r["sample_values"]
    by_stage: dict = {}
    for stg in stages:
        by_stage.setdefault(stg.get("stage"), []).append(stg)
    for si, (stage, suites) in enumerate(by_stage.items()):
        results = [r for sg in suites for r in (sg.get("results") or [])]
        crit = [r for r in results if not r.get("success") and r.get("severity") == "critical"]
        warn = [r for r in results if not r.get("success") and r.get("severity") != "critical"]
        icon = "✖" if crit else ("⚠" if warn else "✔")
        st.markdown(f"**{icon} Stage `{stage}`** — {len(results) - len(crit) - len(warn)} of {len(results)} "
                    f"expectations passed" + (f", **{len(crit)} critical failure(s)**" if crit else "")
                    + (f", {len(warn)} warning(s)" if warn else "") + f" over {len(suites)} suite(s).")
        failing = [(sg.get("suite"), r) for sg in suites for r in (sg.get("results") or []) if not r.get("success")]
        if failing:
            fdf = report.gate_failures_frame(failing, samples)
            # a few failures: a static table (no grid to load before the page's first chart), each
            # cell cut at 200 characters (the CSV holds them whole)
            ui.table(fdf, f"gate_failures_{stage}", key=f"gate_fail_{si}", static="short",
                     max_chars=200,
                     column_config={"observed": st.column_config.TextColumn(width="large")})
        exp_all = st.expander(f"All {len(results)} expectations of stage {stage}", key=f"all_{si}",
                              on_change="rerun")  # lazy: the table is built and sent only when opened
        if exp_all.open:
            with exp_all:
                df = pl.DataFrame([{"result": "✔ pass" if r.get("success") else ("✖ FAIL" if r.get("severity") == "critical" else "⚠ warn"),
                                    "suite": sg.get("suite"), "expectation": r.get("expectation"), "column": r.get("column"),
                                    "severity": r.get("severity"), "unexpected": r.get("unexpected_count"),
                                    "observed": None if r.get("observed_value") is None else str(r.get("observed_value"))}
                                   for sg in suites for r in (sg.get("results") or [])],
                                  schema={"result": pl.Utf8, "suite": pl.Utf8, "expectation": pl.Utf8, "column": pl.Utf8,
                                          "severity": pl.Utf8, "unexpected": pl.Int64, "observed": pl.Utf8})
                ui.table(df, f"gate_{stage}", key=f"gate_all_{si}")

# ------------------------------------------------------------------ history
st.subheader("Gate history")
hist = da.gate_history()
if hist.is_empty():
    st.info("No gate results are recorded yet: runs of this warehouse were made without gates.",
            icon=":material/info:")
else:
    ui.chart(charts.gate_history(hist), "gate_history", key="gate_history", data=hist)

# ------------------------------------------------------------------ quarantine
st.subheader("Quarantine")
q = da.quarantine_summary()
run_for_q = q["run_id"][0] if q.height else last["run_id"]
ui.chart(charts.quarantine_bars(q, f"Quarantined rows by reason — run {run_for_q}"), "quarantine_by_reason",
         key="quarantine", data=q if q.height else None)
ing = da.ingest_summary()
if ing.height:
    st.markdown("**Rows read, kept, de-duplicated and quarantined per table**"
                + (f" — run `{ing['run_id'][0]}`" if "run_id" in ing.columns else ""))
    ui.table(ing.drop("run_id", strict=False), "ingest_summary", key="ingest", csv=ing,  # the run is named above
             static="short")
if q.height:
    pairs = sorted({f"{t} · {r}" for t, r in zip(q["table_name"], q["reason"])})
    # on demand: the sample and its picker (a dropdown's JavaScript) are built only when opened
    samples = st.expander(f"Sample quarantined rows, {len(pairs)} kind{'s' if len(pairs) != 1 else ''} "
                          "(table · reason)", key="samples", on_change="rerun", bind="query-params",
                          icon=":material/search:")
    if samples.open:
        with samples:
            pick = ui.pick_one("Show sample quarantined rows for", pairs, pairs[0], key="q_pick")
            t, r = pick.split(" · ", 1)
            sample = da.quarantine_samples(t, r, 10)
            if sample.is_empty():
                st.caption("No rows of this kind in the live warehouse's quarantine table (they belong to an older "
                           "run).")
            elif sample.height <= ui.STATIC_ROWS:  # whole rows as stored, no grid to load
                st.markdown(ui.markdown_table(sample, max_chars=600))
            else:
                st.dataframe(sample, hide_index=True)
qh = da.quarantine_history()
if qh.height and qh["run_id"].n_unique() > 1:
    st.markdown("**Quarantine counts across runs**")
    ui.table(qh, "quarantine_history", key="quarantine_history", static="short")

# ------------------------------------------------------------------ runs
st.subheader("Run history")
recent = runs.head(ui.STATIC_ROWS)
st.caption(report.runs_caption(recent.height, runs.height))
ui.table(report.runs_frame(recent), "runs", key="runs", csv=runs, static=True, max_chars=200)
