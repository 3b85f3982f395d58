"""Audit: the latest 8-week metric audit's findings (decay, drift, calibration, gaming,
alignment, guardrails, tiers, data quality), the history, and the sign-off form."""
import contextlib
import datetime as dt
import os

import polars as pl
import streamlit as st

from pages import ui
from pipelines import charts, report
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("Metric audit (every 8 weeks)")
if not da.warehouse_exists():
    ui.require_results()
    st.stop()

state = da.audit_state()
if ui.unavailable(state, "The audit is not available"):
    st.caption("Every 8 weeks the audit checks that the north star still moves with behavior, how fast each L6 "
               "metric decays, whether the input drifted, whether confidence is calibrated and whether a metric "
               "is being gamed (SPEC §6).")
    st.stop()
for err in state.get("errors", []):
    st.caption(f"Not available: {err}")

due = da.audit_due()
if due and due.get("next_due"):
    note = due.get("note") or ""
    note = note[:1].upper() + note[1:]
    if due["overdue"]:
        st.error(f"**The audit is overdue**: it was due on {due['next_due']} ({-due['days']} days ago). {note}.",
                 icon=":material/event_busy:")
    else:
        st.info(f"The next audit is due on {due['next_due']} (in {due['days']} days). {note}.", icon=":material/event:")

latest = state.get("latest")
FLAG = {True: "⚠ flagged", False: "✔ ok", None: "–"}


@contextlib.contextmanager
def part(name: str):
    """One part of the findings: a shape this page does not know is explained, not raised."""
    try:
        yield
    except Exception as exc:
        if os.environ.get("KPI_BRIDGE_DEBUG"):
            raise
        st.warning(f"The {name} findings could not be drawn ({type(exc).__name__}: {exc}); "
                   "the raw findings are in the audit record.", icon=":material/warning:")


def _f(rec: dict) -> dict:
    f = rec.get("findings") if isinstance(rec, dict) else None
    return f if isinstance(f, dict) else {}


def run_form() -> None:
    with st.form("run_audit"):
        info = da.warehouse_info()
        last = info.get("last_date")
        as_of = st.date_input("Audit as of (UTC date; the window is the 8 full ISO weeks before it)",
                              value=(last + dt.timedelta(days=1)) if last else dt.date.today(),
                              max_value=da.latest_audit_date(last) if last else None)  # data in its last week
        if st.form_submit_button("Run the audit now and record it", icon=":material/play_arrow:"):
            try:
                audit_id = da.run_audit(as_of)
            except Exception as exc:  # words, not a traceback
                st.error(f"The audit could not run: {exc}", icon=":material/error:")
            else:
                st.session_state["_audit_recorded"] = (audit_id, as_of)  # said after the rerun
                st.rerun()


def recorded_note() -> None:
    """After the form's rerun: which audit was recorded, and whether it is the one shown."""
    done = st.session_state.pop("_audit_recorded", None)
    if not done:
        return
    audit_id, as_of = done
    if latest and latest.get("audit_id") != audit_id:
        st.info(f"Audit `{audit_id}` (as of {as_of}) was recorded. It looks back from an earlier date than "
                f"the latest audit (as of {latest.get('as_of')}), which stays the one shown here and the one "
                "a sign-off applies to; it is listed in the audit history.", icon=":material/history:")
    else:
        st.success(f"Audit `{audit_id}` (as of {as_of}) ran and was recorded.", icon=":material/check_circle:")


recorded_note()
if not latest:
    st.info("No audit has been recorded in this warehouse yet. Run the first one below.", icon=":material/info:")
    run_form()
    st.stop()

f = _f(latest)
st.subheader(f"Latest audit `{latest.get('audit_id')}`")
win, ref = f.get("window") or {}, f.get("reference") or {}
st.caption(f"As of {latest.get('as_of')} · audit window {win.get('start')} → {win.get('end')} "
           f"({win.get('weeks')} weeks) against the reference {ref.get('start')} → {ref.get('end')} · "
           f"metric contract {latest.get('contract_version')}")
for note in f.get("notes") or []:  # the windows against the data: what could not be assessed
    st.warning(f"{note[:1].upper()}{note[1:]}.", icon=":material/warning:")
c1, c2, c3, c4 = st.columns(4)
verdict = latest.get("verdict") or f.get("verdict")
c1.metric("Recommendation", str(verdict or "n/a"), help="keep | iterate | re-define, from the contract's weights")
if (f.get("scorecard") or {}).get("reason"):
    c1.caption(f["scorecard"]["reason"])  # why: the score against the bar, what was flagged or not compared
scale = da.audit_score_range()
c2.metric("Weighted score", f"{latest.get('score'):+.1f}" if latest.get("score") is not None else "n/a",
          help="primary +1, secondary +0.5, guardrail −2 when violated (seed 001)")
c2.caption(report.score_scale_text(scale))
signed = latest.get("signed_by")
c3.metric("Sign-off", f"✔ {signed}" if signed else "○ pending")  # pending is not a failure (✖); ⏳ lacks a glyph
if not signed:
    c3.caption("awaiting sign-off (below)")
c4.metric("Decision", str(latest.get("decision") or "pending"))
if f.get("flagged"):
    st.markdown(report.audit_checks_line(f))

# only the open tab is drawn (its state lives in the URL): every tab's charts at once cost
# the browser seconds on first load
tabs = st.tabs(["Decay", "Drift", "Calibration", "Anti-gaming", "Alignment", "Guardrails & tiers", "Data quality"],
               key="tab", on_change="rerun", bind="query-params")
with tabs[0], part("decay"):
    if tabs[0].open:
        decay = f.get("decay") or {}
        weekly = None
        if win.get("start") and win.get("end"):
            weekly = da.l6("week", date_from=dt.date.fromisoformat(str(win["start"])[:10]),
                           date_to=dt.date.fromisoformat(str(win["end"])[:10]))
            # the audit reads weeks, the scorecard quarters
            st.caption(f"Weekly values over the audit window ({str(win['start'])[:10]} → {str(win['end'])[:10]}) "
                       "with the fitted trend: \"already red\" means the trend's last week is past the red line, "
                       "which a quarter's value on Home and QBR can still be short of (their tiles give the last "
                       "28 days beside the quarter). A dotted line marks a one-off step the audit found; where the "
                       "weeks since are steady, the panel says so instead of the trend's weeks to red (the line "
                       "fitted across a step reads it as a trend).")
        ui.chart(charts.decay_small_multiples(decay, weekly), "audit_decay", key="decay",
                 data=pl.DataFrame([{"metric": m, **{k: v for k, v in d.items() if k != "weeks"}}
                                    for m, d in decay.items()]) if decay else None)
with tabs[1], part("drift"):
    if tabs[1].open:
        drift = f.get("drift") or {}
        rows = [{"input": k, "psi": v.get("psi"), "band": v.get("band"), "kind": v.get("kind"),
                 "chi2 p-value": v.get("p_value"), "shift detected": v.get("shift_detected"),
                 "flagged": FLAG.get(v.get("flagged")), "n reference": v.get("n_reference"), "n audit": v.get("n_audit")}
                for k, v in drift.items() if isinstance(v, dict)]
        ui.chart(charts.psi_bars(rows, "Input drift: population stability index vs the reference window"),
                 "audit_psi", key="psi", data=pl.DataFrame(rows) if rows else None)
        movers = [{"input": k, "largest share changes (audit vs reference)": v.get("top_movers") or "",
                   # a categorical input has no median: "—", not "None"
                   "reference median": charts.fmt_num(v["reference_median"]) if v.get("reference_median") is not None
                   else "—", "audit median": charts.fmt_num(v["audit_median"]) if v.get("audit_median") is not None
                   else "—"}
                  for k, v in drift.items() if isinstance(v, dict)]
        if movers:
            st.markdown("**Largest share changes**")
            st.dataframe(pl.DataFrame(movers), hide_index=True)
with tabs[2], part("calibration"):
    if tabs[2].open:
        cal = f.get("calibration") or {}
        bins = cal.get("bins") or []
        ui.chart(charts.reliability_diagram(bins, cal.get("ece")), "audit_calibration", key="calibration",
                 data=pl.DataFrame(bins) if bins else None)
        if cal:
            st.caption(f"ECE {cal.get('ece', float('nan')):.3f} against the limit {cal.get('limit')} "
                       f"({FLAG.get(cal.get('flagged'))}); {cal.get('n', 0):,} tier-2 verdicts; "
                       f"{cal.get('verdict_source', '')}.")
with tabs[3], part("anti-gaming"):
    if tabs[3].open:
        gaming = f.get("gaming") or []
        ui.chart(charts.gaming_pairs(gaming, "Anti-gaming: each primary metric beside its counter-metric<br>"
                                              "<sup>relative change against the reference window, %</sup>"),
                 "audit_gaming", key="gaming",
                 data=pl.DataFrame(gaming) if gaming else None)
        for g in gaming:
            (st.warning if g.get("flag") else st.caption)(report.gaming_line(g))
with tabs[4], part("alignment"):
    if tabs[4].open:
        align = f.get("alignment") or {}
        ui.chart(charts.alignment_scatter(align), "audit_alignment", key="alignment")
        st.caption(report.ALIGNMENT_MEASURE_NOTE)
        note = report.plain_names(align.get("note", "")) if align else ""
        if align and align.get("inconclusive"):  # the note starts with "inconclusive: …"
            st.info(f"{note[:1].upper()}{note[1:]}", icon=":material/help:")
        elif align:
            (st.success if align.get("aligned") else st.warning)(
                f"{'Aligned' if align.get('aligned') else 'Not aligned'}: {note}",  # the icon says it
                icon=":material/check_circle:" if align.get("aligned") else ":material/warning:")
with tabs[5], part("guardrail and tier"):
    if tabs[5].open:
        for g in f.get("guardrails") or []:
            st.markdown(report.guardrail_line(g, win))
            if g.get("per_domain"):
                st.dataframe(report.guardrail_domains_frame(g), hide_index=True)
        tiers = f.get("tier_agreement") or {}
        if tiers:
            st.markdown(f"**Tier agreement** ({tiers.get('pair')}): agreement {tiers.get('agreement', 0):.1%}, "
                        f"Cohen's κ {tiers.get('kappa', 0):.2f} (minimum {tiers.get('kappa_min')}) — "
                        f"{FLAG.get(tiers.get('flagged'))}")
with tabs[6], part("data quality"):
    if tabs[6].open:
        dq = f.get("data_quality") or {}
        run_history = da.runs()
        now = dict(zip(run_history["run_id"], run_history["status"])) if run_history.height else {}
        st.markdown(" — ".join(p for p in (FLAG.get(dq.get("flagged")), (dq.get("note") or "").rstrip(".")) if p)
                    + ".")
        late = report.ended_badly_after_audit(dq.get("runs") or [], now)
        if late:
            st.warning(f"Run {', '.join(late)} was still in progress when the audit was recorded and has since ended "
                       "without success: the audit's data-quality verdict did not see that (Data quality page).",
                       icon=":material/warning:")
        if dq.get("runs"):
            ui.table(report.audit_runs_frame(dq["runs"], now), "audit_gate_runs", key="audit_runs", static=True)

# ------------------------------------------------------------------ history + sign-off
st.subheader("Audit history")
history = state.get("history") or []
if history:
    ui.table(report.audit_history_frame(history), "audit_history", key="history", static=True,
             csv=report.audit_history_frame(history, for_csv=True))

st.subheader("Sign-off")
if signed:
    st.success(f"Signed off by {signed} on {str(latest.get('signed_at'))[:16]} UTC: {latest.get('decision')}. "
               f"The next audit is due {latest.get('next_due')}.", icon=":material/verified:")
else:
    st.markdown(f"`{latest.get('audit_id')}` is not signed off yet.")
    # on demand: the form (a text box's JavaScript) is built only when opened, not on first load
    sign = st.expander("Sign off this audit", key="sign", on_change="rerun", bind="query-params",
                       icon=":material/verified:")
    if sign.open:
        with sign, st.form("sign_audit"):
            name = st.text_input("Your name")
            options = ["keep", "iterate", "re-define"]
            decision = st.radio("Decision", options, index=options.index(verdict) if verdict in options else 0,
                                horizontal=True)
            if st.form_submit_button("Sign off", icon=":material/verified:"):
                if not name.strip():
                    st.warning("Enter the name of the person signing off.", icon=":material/warning:")
                else:
                    try:
                        da.sign_audit(latest.get("audit_id"), name.strip(), decision)
                        st.success(f"Signed off by {name.strip()}: {decision}.", icon=":material/check_circle:")
                        st.rerun()
                    except Exception as exc:
                        st.error(f"The sign-off could not be recorded: {exc}", icon=":material/error:")
st.subheader("Run a new audit")
# lazy: the form (its date picker's JavaScript) is built only when opened, not on first load
run_new = st.expander("Run the audit as of a date you pick and record it", key="run_new", on_change="rerun",
                      bind="query-params", icon=":material/play_arrow:")
if run_new.open:
    with run_new:
        run_form()
