"""Home: the L6 scorecard for the latest full quarter and the quarter to date."""
import streamlit as st

from pages import ui
from pipelines import charts, config
from pipelines import data_access as da

ui.through_app()  # first: a direct visit on a fresh server goes through app.py

st.title("KPI Bridge — L6 scorecard")


def audit_banner() -> None:
    try:
        due = da.audit_due()
    except da.WarehouseUnavailable:
        return
    if not due:
        return
    when, pending = due["next_due"], due.get("awaiting_signoff")
    basis = ("no audit has been signed off yet, and the first fell due 8 weeks after the data begin"
             if due.get("never_signed") else "8 weeks after the last sign-off")
    if due["overdue"] and pending:  # the audit was run: what is missing is a signature
        st.error(f"**The metric audit's sign-off is overdue**: `{pending}` is recorded and awaits sign-off "
                 f"on the Audit page. It was due on {when} ({-due['days']} days ago: {basis}).",
                 icon=":material/event_busy:")
    elif due["overdue"]:
        st.error(f"**The 8-week metric audit is overdue**: it was due on {when} ({-due['days']} days ago: "
                 f"{basis}). Open the Audit page to run it and sign it off.", icon=":material/event_busy:")
    elif due["days"] <= 7:
        st.warning(f"**The 8-week metric audit is due** on {when} (in {due['days']} days). "
                   + (f"`{pending}` is recorded and awaits sign-off on the Audit page." if pending else ""),
                   icon=":material/event_upcoming:")
    else:
        st.caption(f"Next metric audit due {when} (in {due['days']} days).")


audit_banner()
info = ui.require_results()
if info:
    p = da.periods()
    st.caption(f"Data {p['first_date']} → {p['last_date']} (UTC) · statuses use metric contract thresholds; "
               "each tile names the threshold it used.")
    fresh = da.freshness()
    if fresh:
        st.warning(ui.freshness_text(fresh), icon=":material/schedule:")
    tabs = []
    if p["full_quarter"]:
        tabs.append((f"Latest full quarter · {p['full_quarter']['label']}", p["full_quarter"]))
    if p["qtd"]:
        tabs.append((f"Quarter to date · {p['qtd']['label']} (through {p['last_date']})", p["qtd"]))
    if not p["qtd"]:
        st.caption(f"No quarter-to-date figures: the data end on {p['last_date']}, the last day of "
                   f"{p['full_quarter']['label'] if p['full_quarter'] else 'a quarter'}.")
    if not p["full_quarter"]:
        st.info("The data do not span a full calendar quarter yet: the scorecard shows the quarter to date.",
                icon=":material/info:")
    # only the open tab is drawn (the URL keeps it): each holds six sparklines and a chart
    for (label, q), tab in zip(tabs, st.tabs([t[0] for t in tabs], key="period", on_change="rerun",
                                             bind="query-params")):
        if not tab.open:
            continue
        with tab:
            card = da.scorecard(q["label"])
            if not card["has_data"]:
                st.info(f"No interactions in {q['label']}.", icon=":material/info:")
                continue
            ui.scorecard_metrics(card, key=f"home_{q['label']}")
            weeks = da.weeks_of(q["label"])
            fig = charts.weekly_trends(weeks, f"Weekly L6 trend — {q['label']}"
                                       + (" to date" if card["to_date"] else ""))
            ui.chart(fig, f"weekly_trend_{q['label']}", key=f"home_trend_{q['label']}",
                     data=weeks.select(["period_from", "period_to", "days", *config.METRICS, "interactions"]))
