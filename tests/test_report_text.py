"""The QBR's words about the bridge: what each chain's dollars are measured against and
what they rest on, on a hand-made bridge report (values worked out by hand below)."""
from __future__ import annotations

import polars as pl

from pipelines import report

CAUSAL = "causal: treatment vs holdout (intention-to-treat), scaled to the treatment population"
ALONE = "measured on the treatment population; the holdout (never offered the AI) has none of this P&L line"


def _chain(name, usd, lo, hi, method, assumptions):
    return {"name": name, "ai_metric": name.split()[0].lower(), "usd_impact": usd, "usd_ci_low": lo,
            "usd_ci_high": hi, "impact_method": method, "assumptions": assumptions, "consistent": True,
            "gap_material": False, "note": ""}


BRIDGE = {"available": True, "assumptions_version": "test.1", "waterfall": {"steps": []}, "chains": [
    _chain("TCR → support cost", -1_000.0, -3_000.0, 1_000.0, CAUSAL,
           {"agent_cost_per_hour_usd": {"value": 48.0, "unit": "USD per hour"}}),
    _chain("RΔ → retained revenue", 20_000.0, 15_000.0, 25_000.0, CAUSAL, {}),
    _chain("TTA → productivity value", 50_000.0, 49_990.0, 50_010.0, ALONE,
           {"user_hour_value_usd": {"value": 45.0, "unit": "USD per hour"},
            "manual_baseline_minutes_per_task": {"value": None, "unit": "minutes per task",
                                                 "by_feature": {"code_assistant": 12.0, "docs": 15.0}}}),
    _chain("CPVO → AI spend", -9_000.0, -9_100.0, -8_900.0, ALONE, {}),
]}


def test_chains_frame_says_what_each_impact_is_measured_against():
    df = report.chains_frame(BRIDGE)
    assert df["measured against"].to_list() == [
        "the holdout (causal)", "the holdout (causal)",
        "nothing: treatment only (the holdout has none of this line)",
        "nothing: treatment only (the holdout has none of this line)"]
    assert df["rests on assumptions"].to_list() == [
        "agent cost per hour: $48", "none",
        "manual baseline minutes per task: code assistant 12, docs 15; user hour value: $45", "none"]
    # the name carries the unit; cents only when there are some
    assert report.assumptions_text({"assumptions": {"cost_per_call_usd": {"value": 0.125, "unit": "USD per call"},
                                                    "share_reviewed": {"value": 0.05, "unit": "share"}}}) == \
        "cost per call: $0.125; share reviewed: 0.05"  # the input as given, not rounded to cents
    assert report.assumptions_text({"assumptions": {"x_usd": {"value": 0.004, "unit": "USD"},
                                                    "y_usd": {"value": 22.5, "unit": "USD"},
                                                    "z_usd": {"value": float("nan"), "unit": "USD"}}}) == \
        "x: $0.004; y: $22.50; z: n/a"
    assert df["impact (USD)"].to_list() == [-1_000.0, 20_000.0, 50_000.0, -9_000.0]
    # + is good for the P&L; an interval that spans zero is no measurable effect
    assert df["P&L reading"].to_list() == ["no measurable effect", "gain", "gain", "cost"]


def test_summary_splits_the_total_by_what_it_is_measured_against():
    steady = [{"metric": m, "value": v, "status": "green", "previous": v, "previous_status": "green", "note": ""}
              for m, v in (("retention_delta_pts", 9.0), ("hitl_per_100", 1.0))]
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True, "metrics": steady}
    [line] = [b for b in report.summary_bullets(card, BRIDGE) if b.startswith("The KPI bridge")]
    # total 60,000 = 19,000 against the holdout (−1,000 + 20,000) + 41,000 treatment only (50,000 − 9,000)
    assert "values 2026Q3's AI impact at +$60.0k across 4 chains" in line
    assert "+$19.0k measured against the holdout (TCR → support cost, RΔ → retained revenue)" in line
    assert "+$41.0k on the treatment population alone" in line
    assert "TTA → productivity value +$50.0k, CPVO → AI spend −$9,000" in line
    assert "the largest is TTA → productivity value at +$50.0k" in line
    assert "rests on manual baseline minutes per task: code assistant 12, docs 15" in line
    assert "The intervals cover sampling only, not the assumptions." in line


def _m(metric, value, status, recent=None, recent_status="n/a"):
    return {"metric": metric, "value": value, "status": status, "previous": value, "previous_status": status,
            "note": "", "recent": recent, "recent_status": recent_status}


def test_summary_says_when_a_quarter_ended_worse_than_its_average():
    import datetime as dt

    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True,
            "recent_from": dt.date(2026, 9, 3), "recent_to": dt.date(2026, 9, 30),
            "row": {"tier3_hr": 0.08},
            "metrics": [_m("tcr", 0.746, "amber", 0.672, "red"), _m("hr", 0.0297, "green", 0.0301, "amber"),
                        _m("retention_delta_pts", 9.9, "green", 9.0, "green"), _m("hitl_per_100", 1.0, "green")]}
    bullets = report.summary_bullets(card)
    assert ("TCR ended 2026Q3 worse than its quarter value: 67.2% (red) over the last 28 days (Sep 3 – Sep 30), "
            "against 74.6% (amber) for the quarter.") in bullets
    assert any(b.startswith("HR ended 2026Q3 worse") for b in bullets)
    assert not any(b.startswith("RΔ ended") for b in bullets)  # still green: no bullet
    # tier 3 at 8.0% is red on HR's thresholds (red > 5%) while HR is green
    [t3] = [b for b in bullets if b.startswith("Behavioral (tier-3) signals")]  # SPEC §2: tier 3 is behavioral
    assert "mark 8.0% as hallucinated (red on HR's thresholds) against HR 3.0% (green)" in t3
    assert "xpert" not in t3  # tier 2 is the human expert review


def test_waterfall_credits_each_chain_with_its_metric_move_only():
    from pipelines import charts

    steps = [{"label": "TCR → support cost", "usd": 100.0, "ci_low": 50.0, "ci_high": 150.0,
              "via_ai_metric": 30.0, "other": 70.0},
             {"label": "TTA → productivity value", "usd": -50.0, "ci_low": -60.0, "ci_high": -40.0,
              "via_ai_metric": -60.0, "other": 10.0},
             {"label": "CPVO → AI spend", "usd": 5.0, "ci_low": 1.0, "ci_high": 9.0,
              "via_ai_metric": None, "other": None}]  # no split: the whole change, with its interval
    bars = charts.waterfall_bars(steps)
    M, O, W = charts.METRIC_PART, charts.OTHER_PART, charts.WHOLE_PART
    # decomposed along each chain: TCR's +30 own move and +70 volume beside TTA's −60 and +10
    # (one bar for every chain's volume would net them into +80)
    assert [(b["chain"], b["part"], b["usd"]) for b in bars] == [
        ("TCR → support cost", M, 30.0), ("TCR → support cost", O, 70.0),
        ("TTA → productivity value", M, -60.0), ("TTA → productivity value", O, 10.0),
        ("CPVO → AI spend", W, 5.0)]
    assert sum(b["usd"] for b in bars) == 55.0 == sum(s["usd"] for s in steps)  # the net change is kept
    assert (bars[4]["ci_low"], bars[4]["ci_high"]) == (1.0, 9.0) and bars[0]["ci_low"] is None
    fig = charts.waterfall(steps, "t")
    groups, parts = (list(a) for a in fig.data[0].x)
    assert [g.replace("<br>", " ") for g in groups] == [b["chain"] for b in bars] + ["All chains"]
    assert [p.replace("<br>", " ") for p in parts] == ["metric move", "volume, mix, rates"] * 2 + ["whole change",
                                                                                                    "net change"]
    assert list(fig.data[0].measure) == ["relative"] * 5 + ["total"]
    assert "−$60" == fig.data[0].text[2] and "[+$1, +$9]" in fig.data[0].text[4]


def test_summary_separates_metric_moves_from_volume():
    def step(label, own, other):
        return {"label": label, "chain": label, "usd_change": own + other, "usd_ci_low": None, "usd_ci_high": None,
                "components": [{"part": "via_ai_metric", "usd": own}, {"part": "other", "usd": other}]}

    bridge = {**BRIDGE, "waterfall": {"previous_quarter": "2026Q2", "steps": [
        step("TCR → support cost", -629.0, -1_543.0), step("TTA → productivity value", -329.0, 26_900.0)]}}
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True,
            "metrics": [_m("retention_delta_pts", 9.9, "green"), _m("hitl_per_100", 1.0, "green")]}
    [line] = [b for b in report.summary_bullets(card, bridge) if b.startswith("Quarter over quarter")]
    # net 24,399 = own moves −958 (−629 − 329) + volume, mix and rates 25,357 (−1,543 + 26,900)
    assert line == ("Quarter over quarter the dollars moved +$24.4k: the AI metrics' own moves −$958 "
                    "(largest TCR → support cost, −$629) and volume, mix and rates +$25.4k "
                    "(TTA → productivity value +$26.9k, TCR → support cost −$1,543).")
    # a chain without the split is not counted among the metrics' own moves (its change holds volume)
    whole = {"label": "CPVO → AI spend", "chain": "CPVO → AI spend", "usd_change": -5_000.0, "usd_ci_low": None,
             "usd_ci_high": None, "components": []}
    mixed = {**bridge, "waterfall": {**bridge["waterfall"], "steps": bridge["waterfall"]["steps"] + [whole]}}
    [line] = [b for b in report.summary_bullets(card, mixed) if b.startswith("Quarter over quarter")]
    assert line == ("Quarter over quarter the dollars moved +$19.4k: the AI metrics' own moves −$958 "
                    "(largest TCR → support cost, −$629) and volume, mix and rates +$25.4k "
                    "(TTA → productivity value +$26.9k, TCR → support cost −$1,543); not split into the two: "
                    "CPVO → AI spend −$5,000.")
    alone = {**bridge, "waterfall": {**bridge["waterfall"], "steps": [whole]}}
    [line] = [b for b in report.summary_bullets(card, alone) if b.startswith("Quarter over quarter")]
    assert line == ("Quarter over quarter the dollars moved −$5,000 (CPVO → AI spend −$5,000; not split into the "
                    "AI metric's own move and volume, mix and rates).")


def test_chains_print_writes_dollars_out_and_moves_notes_under_the_table():
    bridge = {**BRIDGE, "chains": [dict(c) for c in BRIDGE["chains"]]}
    bridge["chains"][0]["note"] = "Consistent: the intervals overlap."
    df, notes = report.chains_print(bridge)
    assert df.columns == ["chain", "impact", "95% CI", "P&L reading", "measured against",
                          "consistent with measured", "rests on assumptions"]
    # TCR and TTA rest on assumptions with no range: their intervals are marked sampling-only
    assert df.row(0) == ("TCR → support cost", "−$1,000", "−$3,000 to +$1,000 †", "no measurable effect",
                         "the holdout", "✔ yes", "agent cost per hour: $48")
    assert df["impact"].to_list()[2:] == ["+$50,000", "−$9,000"]
    assert df["95% CI"].to_list()[1:] == ["+$15,000 to +$25,000", "+$49,990 to +$50,010 †", "−$9,100 to −$8,900"]
    assert df["measured against"].to_list() == ["the holdout", "the holdout", "no holdout (treatment only)",
                                                "no holdout (treatment only)"]
    assert notes == [report.SAMPLING_ONLY_NOTE, "TCR → support cost: Consistent: the intervals overlap."]
    assert report.SAMPLING_ONLY_NOTE.startswith("† Sampling only")
    # an interval with no width (AI spend measured whole) says so, not "−$830 to −$830"
    bridge["chains"][3] = {**bridge["chains"][3], "usd_impact": -830.2, "usd_ci_low": -830.2, "usd_ci_high": -830.2}
    assert report.chains_print(bridge)[0]["95% CI"][3] == "exact (no sampling error)"


def test_an_interval_is_called_sampling_only_while_an_assumption_has_no_range():
    tcr, rd, tta, _ = BRIDGE["chains"]
    assert report.fixed_assumptions(tta) == ["manual_baseline_minutes_per_task", "user_hour_value_usd"]
    assert report.fixed_assumptions(rd) == []
    assert report.ci_words(tcr) == "95% CI, sampling only" and report.ci_words(rd) == "95% CI"
    assert report.ci_caveat(rd) == ""
    assert report.ci_caveat(tcr) == ("The interval covers sampling only: agent cost per hour is held exact, "
                                     "so the figure is only as good as that assumption.")
    assert "manual baseline minutes per task, user hour value are held exact" in report.ci_caveat(tta)
    # a plausible range (low/high) widens only the edge intervals (implied, what-if): the measured
    # interval is the P&L node's sampling interval times the assumption, still sampling only
    ranged = {**tcr, "assumptions": {"agent_cost_per_hour_usd": {"value": 48.0, "low": 40.0, "high": 56.0}}}
    assert report.ci_words(ranged) == "95% CI, sampling only" and report.chains_print(
        {"chains": [ranged]})[0]["95% CI"].to_list() == ["−$3,000 to +$1,000 †"]


def test_pdf_chain_table_keeps_each_dollar_figure_on_one_line():
    import io

    import polars as pl
    from pypdf import PdfReader

    df, notes = report.chains_print(BRIDGE)
    pdf = report.qbr_pdf("2026Q3", pl.DataFrame({"metric": ["TCR"], "value": ["80.0%"]}), ["one bullet"],
                         [], [("KPI bridge chains (USD, 95% CI)", df, ["TCR → support cost: a note."])],
                         images=False)
    lines = [ln.strip() for p in PdfReader(io.BytesIO(pdf)).pages for ln in p.extract_text().splitlines()]
    text = "\n".join(lines)
    for figure in ("−$3,000 to +$1,000", "+$49,990 to +$50,010", "−$9,100 to −$8,900"):
        assert figure in text, (figure, text)
    assert "Notes" in lines and "•  TCR → support cost: a note." in text


def test_audit_bullet_says_verdict_sign_off_and_what_was_flagged():
    record = {"as_of": "2026-10-01", "verdict": "re-define", "score": -6.0, "signed_by": None,
              "findings": {
                  "window": {"start": "2026-08-03", "end": "2026-09-27"},
                  "contract": {"north_star": "tcr", "behavior": {"name": "support contacts per 1,000 AI interactions"}},
                  "decay": {"tcr": {"flagged": True, "weeks_to_red": 0.0}, "hr": {"flagged": False},
                            "cpvo_usd": {"flagged": True, "weeks_to_red": 12.5}},
                  "drift": {"domain": {"flagged": False}, "feature": {"flagged": True}},
                  "flagged": {"alignment": True, "gaming": False, "calibration": False},
                  "guardrails": [{"role": "guardrail", "metric": "hr", "op": "<=", "limit": 0.05,
                                  "violated": True, "domains_violated": ["billing"]},
                                 {"role": "efficiency", "metric": "cpvo_usd", "op": "<=", "limit": 0.004,
                                  "violated": False, "domains_violated": []}],
                  "scorecard": {"reason": "flagged: alignment"}}}
    scale = {"low": -6.5, "high": 2.5, "keep_min": 0.0}
    assert report.audit_bullet(record, scale) == (
        "The 8-week metric audit as of 2026-10-01 (weeks 2026-08-03 – 2026-09-27) recommends “re-define” "
        "(score −6 on a scale of −6.5 to +2.5, keep at 0 or more; flagged: alignment): at its red line by trend: "
        "TCR; heading to red: CPVO; input drift in feature; TCR no longer moves support contacts per 1,000 AI "
        "interactions as it did; guardrail HR ≤ 5.0% broken in billing in those weeks. Not signed off yet.")
    # a metric whose line spans a one-off step, flat since, is named apart from "heading to red"
    step = {"week_start": "2026-08-17", "toward_red": True, "since_trend": "flat"}
    stepped = {**record, "findings": {**record["findings"], "decay": {
        **record["findings"]["decay"], "hitl_per_100": {"flagged": True, "weeks_to_red": 0.3, "level_shift": step},
        "tta_p50_s": {"flagged": True, "weeks_to_red": 9.1, "level_shift": step},
        "hr": {"flagged": True, "weeks_to_red": 18.0, "level_shift": {**step, "since_trend": "worse"}},
        # a step toward green after weeks of decline, or too few weeks after a step: still "heading to red"
        "retention_delta_pts": {"flagged": True, "weeks_to_red": 4.0, "level_shift": {**step, "toward_red": False}},
        "tcr": {"flagged": True, "weeks_to_red": 2.0, "level_shift": {**step, "since_trend": "unknown"}}}}}
    assert ("heading to red: TCR, HR, CPVO, RΔ; a one-off step toward red in the week of 2026-08-17, steady since "
            "(not a trend): HitL-F, TTA p50;") in report.audit_bullet(stepped, scale)
    # the human decision is told apart from the computed recommendation
    signed = {**record, "signed_by": "Ana", "decision": "keep TCR, re-define HR", "verdict": "keep", "score": 1.5,
              "findings": {"window": {"start": "2026-08-03", "end": "2026-09-27"}}}
    assert report.audit_bullet(signed).endswith(
        "recommends “keep” (score +1.5): nothing flagged. Signed off by Ana: “keep TCR, re-define HR”.")
    # a reason that restates the score is left out
    iterate = {**record, "verdict": "iterate", "findings": {**record["findings"], "decay": {}, "drift": {},
                                                          "flagged": {}, "guardrails": [],
                                                          "scorecard": {"reason": "score -6 < 0"}}}
    assert "recommends “iterate” (score −6): nothing flagged." in report.audit_bullet(iterate)
    assert report.audit_bullet(None) is None
    # an audit with no reference data: its "keep" at score 0 compared nothing, and says so
    blind = {**record, "verdict": "keep", "score": 0.0,
             "findings": {"window": {"start": "2026-03-30", "end": "2026-05-24"}, "reference_empty": True,
                          "scorecard": {"reason": "score +0 >= 0 and nothing flagged; nothing was compared"}}}
    assert "recommends “keep” (score 0): nothing compared: its reference window holds no data." in \
        report.audit_bullet(blind)


def test_pdf_wide_table_gives_the_excess_to_its_text_columns():
    import io

    import polars as pl
    from pypdf import PdfReader

    words = "a long explanation that has to wrap over several lines of its cell " * 2
    wide = pl.DataFrame({"chain": ["TTA → productivity value"], "impact": ["+$252,914"],
                         "95% CI": ["+$252,885 to +$252,943"], **{f"text {i}": [words] for i in range(5)}})
    pdf = report.qbr_pdf("2026Q3", pl.DataFrame({"metric": ["TCR"]}), [], [], [("Wide", wide)], images=False)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    # without the fix every column shrinks alike and the range wraps after "to"
    assert "+$252,885 to +$252,943" in text and "+$252,914" in text, text


def test_chain_arrows_run_between_the_boxes_not_into_their_text():
    """Arrows of the chain diagram start and end outside every box: a box's half width is
    at least 7 px per character of its longest line over the ~910 px (1.3 units) the x
    axis spans in a page column, a lower bound for 15 px type (the arrows used to end
    ±0.1 units from the centers and ran into a long P&L box)."""
    import re

    from pipelines import charts

    chain = {"name": "TCR → support cost", "ai_metric": "tcr", "usd_impact": -342.8, "usd_ci_low": -3221.79,
             "usd_ci_high": 2536.19, "impact_method": CAUSAL,
             "steps": [{"from": "tcr", "to": "support_contacts_per_1k", "estimate": -15.56, "ci_low": -29.92,
                        "ci_high": -1.2, "method": "observational", "unit": "per share"},
                       {"from": "support_contacts_per_1k", "to": "support_cost_usd", "estimate": 0.2,
                        "ci_low": 0.2, "ci_high": 0.2, "method": "observational", "estimator": "assumption",
                        "unit": "USD per contact"}],
             "nodes": [{"node": "tcr", "label": "Task Completion Rate", "value": 0.746},
                       {"node": "support_contacts_per_1k", "label": "Support contacts per 1,000 AI interactions",
                        "value": 19.35, "unit": "contacts per 1,000 AI interactions"},
                       {"node": "support_cost_usd", "label": "Support cost", "value": -342.8}]}
    fig = charts.chain_diagram(chain)
    boxes = [a for a in fig.layout.annotations if not a.showarrow and a.y == 0.45]
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(boxes) == 3 and len(arrows) == 2

    def half(box):
        longest = max(len(re.sub(r"<[^>]+>", "", line)) for line in box.text.split("<br>"))
        return longest * 7 / 2 / (910 / 1.3)

    for i, arrow in enumerate(arrows):
        left, right = boxes[i], boxes[i + 1]
        assert arrow.ax >= left.x + half(left), (i, arrow.ax, left.x + half(left))
        assert arrow.x <= right.x - half(right), (i, arrow.x, right.x - half(right))
        assert arrow.x > arrow.ax
    assert "(no measurable effect)" in boxes[-1].text.split("<br>")  # on its own line: a narrower box
    lo, hi = fig.layout.xaxis.range
    assert hi >= boxes[-1].x + half(boxes[-1])  # the last box is not cut at the right edge
    # the P&L box holds an impact, unlike the levels before it: it says against what; with no
    # assumption held exact its interval is not called sampling only
    assert boxes[-1].text.split("<br>")[1:] == ["P&L impact", "vs holdout", "<b>−$343</b>", "(no measurable effect)",
                                                "[−$3,222, +$2,536]"]
    alone = {**chain, "impact_method": ALONE, "assumptions": {"agent_cost_per_hour_usd": {"value": 48.0}}}
    last = [a for a in charts.chain_diagram(alone).layout.annotations if not a.showarrow and a.y == 0.45][-1]
    assert last.text.split("<br>")[1:3] == ["P&L impact", "treatment only"] and "sampling only" in last.text.split("<br>")[-1]


def test_consistency_detail_drops_the_verdict_word():
    chain = {"note": "Inconsistent: the chain implies −$33,355; trust the measured figure."}
    assert report.consistency_detail(chain) == "the chain implies −$33,355; trust the measured figure."
    assert report.consistency_detail(chain, sentence=True).startswith("The chain implies −$33,355")
    assert report.consistency_detail({"note": "Consistent: the intervals overlap."}) == "the intervals overlap."
    assert report.consistency_detail({}) == ""


def test_summary_names_every_metric_by_status_even_when_none_crossed():
    """2026Q2 of the demo: nothing changed status, HitL-F amber all along; the summary named the
    red and the green metrics only, so the one amber metric went unmentioned."""
    card = {"quarter": "2026Q2", "previous_quarter": "2026Q1", "has_data": True, "row": {},
            "metrics": [_m("tcr", 0.82, "green"), _m("hitl_per_100", 5.2, "amber"), _m("cpvo_usd", 0.0091, "red"),
                        _m("retention_delta_pts", 9.0, "green")]}
    bullets = report.summary_bullets(card)
    assert "No L6 metric changed status against 2026Q1." in bullets
    assert "Amber (between its green and red lines) this quarter: HitL-F at 5.20 per 100 (green < 5, red > 10)." in bullets
    assert any(b.startswith("Red this quarter: CPVO at $0.0091") for b in bullets)
    assert "On target (green): TCR, RΔ." in bullets


def test_the_bridge_total_is_split_by_what_it_is_measured_against():
    """The Bridge page headline used to call the whole total 'against the holdout', though
    treatment-only chains (the holdout has none of their P&L line) made most of it."""
    # causal: −1,000 + 20,000 = 19,000; treatment only: 50,000 − 9,000 = 41,000
    assert report.impact_split(BRIDGE) == {"total": 60_000.0, "against_holdout": 19_000.0,
                                           "treatment_only": 41_000.0}
    assert report.impact_split({"chains": []}) == {"total": None, "against_holdout": None, "treatment_only": None}
    ch = BRIDGE["chains"]
    assert report.measured_words(ch[0]) == "the holdout's measured dollars"
    assert report.measured_words(ch[2]) == "the dollars measured on the treatment population"
    inconsistent = {**ch[2], "consistent": False, "gap_material": True, "usd_implied": 10_000.0}
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True,
            "metrics": [_m("retention_delta_pts", 9.0, "green"), _m("hitl_per_100", 1.0, "green")]}
    [check] = [b for b in report.summary_bullets(card, {**BRIDGE, "chains": [inconsistent]}) if b.startswith("Check")]
    assert "and the dollars measured on the treatment population (+$50.0k) disagree" in check, check


def test_an_interval_narrower_than_the_rounding_gives_its_half_width():
    # +$49,990 to +$50,010 both round to +$50.0k: "(95% CI +$50.0k to +$50.0k)" said nothing
    steady = [_m("retention_delta_pts", 9.0, "green"), _m("hitl_per_100", 1.0, "green")]
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True, "metrics": steady}
    [line] = [b for b in report.summary_bullets(card, BRIDGE) if b.startswith("The KPI bridge")]
    # ... and the sentence's close says every interval is sampling only (said once, not per figure)
    assert "the largest is TTA → productivity value at +$50.0k (95% CI ±$10)" in line, line
    assert line.endswith("The intervals cover sampling only, not the assumptions.") and line.count("sampling only") == 1
    assert report._fmt_ci(-3_000.0, 1_000.0) == " (95% CI −$3,000 to +$1,000)"


def test_guardrail_line_names_where_it_broke():
    g = {"metric": "hr", "role": "guardrail", "op": "<=", "limit": 0.05, "value": 0.03144675, "violated": True,
         "overall_violated": False, "domains_violated": ["billing"], "note": "per-domain view required"}
    assert report.guardrail_line(g) == ("**HR** (guardrail) ≤ 5.0%: value 3.1% overall — ⚠ violated in billing "
                                        "(per domain, below). per-domain view required")
    cpvo = {"metric": "cpvo_usd", "role": "efficiency", "op": "<=", "limit": 0.004, "value": 0.0040245,
            "violated": True, "overall_violated": True, "domains_violated": [], "note": ""}
    # $0.0040245 against $0.004 printed "$0.0040 … $0.0040": one more decimal tells them apart
    assert report.guardrail_line(cpvo) == "**CPVO** (efficiency) ≤ $0.00400: value $0.00402 overall — ⚠ violated."
    # the audit window beside the value: the quarter's CPVO on Home and QBR is another window's
    assert report.guardrail_line(cpvo, {"start": "2026-08-03", "end": "2026-09-27T00:00:00"}) == (
        "**CPVO** (efficiency) ≤ $0.00400: value $0.00402 overall in the audit window 2026-08-03 → 2026-09-27 — "
        "⚠ violated.")


def test_fmt_beside_adds_decimals_only_until_two_numbers_differ():
    from pipelines import charts

    assert charts.fmt_beside("hr", 0.031, 0.05) == ("3.1%", "5.0%")  # already different
    assert charts.fmt_beside("hr", 0.04996, 0.05) == ("4.996%", "5.000%")  # 5.0%, 5.00% tie
    assert charts.fmt_beside("tta_p50_s", 30.0, 30.0) == ("30.0 s", "30.0 s")  # equal stays equal
    assert charts.fmt_beside("cpvo_usd", None, 0.004) == ("no data", "$0.0040")
    assert charts.fmt_beside("tcr", 0.7000000001, 0.7) == ("70.00000%", "70.00000%")  # at most 4 more


def test_partial_periods_note_by_hand():
    import datetime as dt

    from pipelines import data_access as da

    d = dt.date
    # the demo's span: Wed 2026-04-01 .. Wed 2026-09-30; weeks start Mon 03-30 .. Mon 09-28
    note = report.partial_periods_note("week", [d(2026, 3, 30), d(2026, 4, 6), d(2026, 9, 28)],
                                       d(2026, 4, 1), d(2026, 9, 30), da.period_bounds)
    assert note.startswith("Partial weeks: the first week starting 2026-03-30 holds data from 2026-04-01 only; "
                           "the last week starting 2026-09-28 holds data through 2026-09-30 only."), note
    # whole months: nothing to say; a To date inside September cuts the last month
    months = [d(2026, 4, 1), d(2026, 9, 1)]
    assert report.partial_periods_note("month", months, d(2026, 4, 1), d(2026, 9, 30), da.period_bounds) is None
    assert "the last month starting 2026-09-01 holds data through 2026-09-15 only" in report.partial_periods_note(
        "month", months, d(2026, 4, 1), d(2026, 9, 30), da.period_bounds, date_to=d(2026, 9, 15))
    # a From date before the data counts from the data's first date
    assert report.partial_periods_note("month", months, d(2026, 4, 1), d(2026, 9, 30), da.period_bounds,
                                       date_from=d(2026, 1, 1)) is None
    # one quarter, cut on both sides: one sentence
    one = report.partial_periods_note("quarter", [d(2026, 4, 1)], d(2026, 4, 10), d(2026, 5, 1), da.period_bounds)
    assert one.startswith("Partial quarter: the quarter starting 2026-04-01 holds data from 2026-04-10 through "
                          "2026-05-01 only. Its counts"), one
    assert report.partial_periods_note("day", [d(2026, 4, 1)], d(2026, 4, 1), d(2026, 4, 1), da.period_bounds) is None


def test_cpvo_slice_note_only_for_cpvo_on_a_non_feature_slice():
    assert report.cpvo_slice_note(["tcr"], ["Segment"]) is None
    assert report.cpvo_slice_note(["cpvo_usd"], []) is None
    assert report.cpvo_slice_note(["cpvo_usd"], ["Feature"]) is None  # infra is split by feature
    note = report.cpvo_slice_note(["tcr", "cpvo_usd"], ["Feature", "Experiment group", "Experiment group"])
    assert note.startswith("CPVO on a slice by experiment group carries the whole platform's infra cost"), note


def test_what_if_interval_in_words():
    assert report.what_if_interval({"usd_ci_low": -3000.0, "usd_ci_high": 1000.0}) == (
        "95% CI −$3,000 to +$1,000, from the chain's edge intervals (the assumptions' own uncertainty is not in it).")
    # RΔ's chain: users per point (a count) and revenue per user (an assumption): no sampling error
    exact = report.what_if_interval({"usd_ci_low": 22_900.0, "usd_ci_high": 22_900.0})
    assert exact.startswith("No sampling interval (+$22.9k): this chain's edges are counts"), exact
    assert report.what_if_interval({"usd_ci_low": None, "usd_ci_high": None}).startswith("No interval")
    at_rest = {"usd_change": 0.0, "usd_ci_low": 0.0, "usd_ci_high": 0.0}  # the slider at the quarter's value
    assert report.what_if_interval(at_rest) == "At the quarter's own value nothing moves yet."


CAUSAL_REPORT = {"causal": {
    "retained_7d_share": {"label": "Retained 7 days", "unit": "share", "treatment": 0.8615, "holdout": 0.8363,
                          "diff": 0.0252, "ci_low": 0.0056, "ci_high": 0.0448, "n_treatment": 12435,
                          "n_holdout": 1521, "method": "welch_t: difference of per-user means"},
    "support_cost_per_user_usd": {"label": "Support cost per user", "unit": "USD per user", "treatment": 4.7062,
                                  "holdout": 5.6505, "diff": -0.9444, "ci_low": -1.4953, "ci_high": -0.3934,
                                  "n_treatment": 12674, "n_holdout": 1567,
                                  "method": "welch_t: difference of per-user means"},
    "tickets_per_user": {"label": "Tickets per user", "unit": "contacts per user", "treatment": 0.38504,
                         "holdout": 0.51819, "diff": -0.13315, "ci_low": -0.17673, "ci_high": -0.08956,
                         "n_treatment": 12674, "n_holdout": 1567, "method": "welch_t: difference of per-user means"}}}


def test_causal_frame_prints_each_measure_in_its_unit_in_five_columns():
    # ten columns of raw 4-decimal floats were cut at 1280 px; by hand: 0.8615 -> 86.15%,
    # 0.0252 -> +2.52 pts (levels and difference to the same precision: 86.15 − 83.63 = 2.52),
    # -0.9444 -> −$0.94, 0.38504 -> 0.385 (three significant digits)
    df = report.causal_frame(CAUSAL_REPORT)
    assert df.columns == ["measure", "treatment", "holdout", "treatment − holdout (95% CI)",
                          "users (treatment / holdout)"]
    assert df.row(0) == ("7-day retention", "86.15%", "83.63%", "+2.52 pts [+0.56 pts, +4.48 pts]", "12,435 / 1,521")
    assert df.row(1) == ("Support cost per user", "$4.71", "$5.65", "−$0.94 [−$1.50, −$0.39]", "12,674 / 1,567")
    assert df.row(2) == ("Support tickets per user", "0.385", "0.518", "−0.133 [−0.177, −0.0896]", "12,674 / 1,567")
    full = report.causal_frame(CAUSAL_REPORT, for_csv=True)  # the CSV keeps every number
    assert full["difference"].to_list() == [0.0252, -0.9444, -0.13315]
    assert full["users (holdout)"].to_list() == [1521, 1567, 1567]
    assert report.causal_methods(CAUSAL_REPORT) == ["difference of per-user means"]
    # the short names come from bridge.CAUSAL_MEASURES; the caption defines each one whose label
    # says more than its name (here the support cost's label is its name: left out)
    assert report.causal_definitions(CAUSAL_REPORT) == (
        "**7-day retention**: retained 7 days · **Support tickets per user**: tickets per user")
    caption = report.causal_caption(CAUSAL_REPORT)
    assert caption.startswith("Differences are treatment − holdout in per-user outcomes, not P&L impact: a negative "
                              "support cost per user is a saving. **7-day retention**: retained 7 days")
    assert caption.endswith(" Method: difference of per-user means.")
    assert report.causal_caption({}) == ("Differences are treatment − holdout in per-user outcomes, not P&L "
                                         "impact: a negative support cost per user is a saving.")


def test_causal_frame_signs_zero_and_missing_values():
    # a difference that rounds to zero has no sign ("−$0.00" read as a small loss); a measure
    # without holdout users has no difference at all
    tiny = {"causal": {
        "support_cost_per_user_usd": {"label": "x", "unit": "USD per user", "treatment": 4.7, "holdout": 4.7,
                                      "diff": -0.001, "ci_low": -0.2, "ci_high": 0.004, "n_treatment": 5,
                                      "n_holdout": 5, "method": "m"},
        "retained_7d_share": {"label": "y", "unit": "share", "treatment": -0.0, "holdout": 0.5, "diff": -0.00001,
                              "ci_low": -0.01, "ci_high": 0.01, "n_treatment": 5, "n_holdout": 5, "method": "m"},
        "tickets_per_user": {"label": "z", "unit": "contacts per user", "treatment": 0.5, "holdout": None,
                             "diff": None, "ci_low": None, "ci_high": None, "n_treatment": 5, "n_holdout": 0,
                             "method": "m"}}}
    df = report.causal_frame(tiny)
    assert df.row(0)[1:4] == ("$4.70", "$4.70", "$0.00 [−$0.20, $0.00]")
    assert df.row(1)[1:4] == ("0.00%", "50.00%", "0.00 pts [−1.00 pts, +1.00 pts]")
    assert df.row(2)[1:5] == ("0.500", "n/a", "n/a", "5 / 0")


def test_fmt_num_prints_every_range_without_e_notation():
    # by hand: the range is picked by the rounded value; three significant digits below 1
    cases = {0: "0", -0.0: "0", 1e-05: "0.0000100", -1.234e-05: "−0.0000123", 0.000665: "0.000665",
             0.098: "0.0980", -0.0191029: "−0.0191", 0.9996: "1.00", 5: "5.00", 61.5077: "61.51",
             99.996: "100", -54131008.79: "−54,131,009", 1e12: "1,000,000,000,000",
             None: "n/a", float("nan"): "n/a", float("inf"): "n/a"}
    from pipelines import charts

    assert {v: charts.fmt_num(v) for v in cases} == cases
    assert [charts.fmt_num(v, signed=True) for v in (2.5, 0.0, -2.5)] == ["+2.50", "0", "−2.50"]


def test_gate_failures_frame_puts_what_failed_first():
    failing = [("staging__stg_interactions", {"severity": "warning", "expectation": "freshness_ts", "column": "ts",
                                              "observed_value": "latest=2026-09-30", "unexpected_count": 1}),
               ("raw__src_users", {"severity": "critical", "expectation": "not_null", "column": "user_id",
                                   "observed_value": None, "unexpected_count": 3})]
    df = report.gate_failures_frame(failing, {("raw__src_users", "not_null", "user_id"): "[null]"})
    assert df.columns == ["result", "expectation", "column", "observed", "sample bad values", "unexpected", "suite"]
    assert df.row(0) == ("⚠ warning", "freshness_ts", "ts", "latest=2026-09-30", None, 1, "staging__stg_interactions")
    assert df.row(1) == ("✖ critical", "not_null", "user_id", None, "[null]", 3, "raw__src_users")
    # the gates store sample rows as JSON with non-ASCII escaped: shown as "k=v" rows, text as written
    stored = '[{"quarter": "2026Q2", "note": "implies \\u2212$185,204"}, {"quarter": "2026Q3", "note": "R\\u0394"}]'
    assert report.sample_words(stored) == "quarter=2026Q2, note=implies −$185,204; quarter=2026Q3, note=RΔ"
    assert report.sample_words('["a", "\\u2212"]') == '["a", "−"]'
    assert report.sample_words("not json") == "not json" and report.sample_words(None) is None


def test_hitl_note_names_the_trigger_the_summary_uses():
    # the tile caption (the note) and the summary bullet (trigger) must not disagree
    from pipelines import config

    hitl = config.metric_contract()["metrics"]["hitl_per_100"]
    assert f"above {hitl['trigger']:g} per 100 queries" in hitl["note"]


def test_steps_frame_prints_the_estimates_as_the_diagram_does():
    chain = {"nodes": [{"node": "cpvo_usd", "label": "Cost per Valid Output"},
                       {"node": "valid_outputs", "label": "Valid outputs"},
                       {"node": "ai_spend_usd", "label": "AI spend"}],
             "steps": [{"from": "cpvo_usd", "to": "valid_outputs", "method": "observational", "estimator": "conversion",
                        "estimate": -54131008.79, "ci_low": -54131008.79, "ci_high": -54131008.79,
                        "unit": "valid outputs per (USD per valid output)", "basis": "identity"},
                       {"from": "valid_outputs", "to": "ai_spend_usd", "method": "observational", "estimator": "wls",
                        "estimate": -0.0191029, "ci_low": -0.0194663, "ci_high": -0.0187395,
                        "unit": "USD per valid output", "basis": "slope"}]}
    df = report.steps_frame(chain)
    assert df["from"].to_list() == ["Cost per Valid Output", "Valid outputs"]
    assert df["method"].to_list() == ["measured rate", "observational"]
    # whole with separators from 100, three significant digits below 1, a minus sign; the
    # edge out of CPVO per +$0.001 of it (54,131,008.79 per dollar / 1,000)
    assert df["estimate"].to_list() == ["−54,131", "−0.0191"]
    assert df["unit"].to_list()[0] == "valid outputs per +$0.001 of CPVO"
    assert df["95% CI"].to_list() == ["exact (no sampling error)", "[−0.0195, −0.0187]"]
    full = report.steps_frame(chain, for_csv=True)
    assert full["estimate"].to_list() == [-54131008.79, -0.0191029]
    assert full["to"].to_list() == ["valid_outputs", "ai_spend_usd"]


def test_an_intervals_ends_print_in_one_scale():
    from pipelines import charts

    # the scale of the larger end: "−$510 to +$15.0k" read as if the low end were tiny
    assert charts.fmt_usd_range(-510.0, 15_009.0) == "−$0.5k to +$15.0k"
    assert charts.fmt_usd_range(4_933.0, 19_318.0, sep=", ") == "+$4.9k, +$19.3k"
    assert charts.fmt_usd_range(-254_035.0, 9_400.0) == "−$254.0k to +$9.4k"
    assert charts.fmt_usd_range(-830.0, -829.6) == "−$830 to −$830"  # equal in whole dollars: left alone
    assert charts.fmt_usd_range(900_000.0, 1_250_000.0) == "+$0.90M to +$1.25M"
    # both ends alike at the scale ("+$1.60M to +$1.60M"): whole dollars instead
    assert charts.fmt_usd_range(1_597_091.0, 1_597_237.0) == "+$1,597,091 to +$1,597,237"
    assert charts.fmt_usd_range(None, 3.0) == "n/a"
    assert charts.fmt_usd_range(100.0, 200.0, signed=False) == "$100 to $200"


def test_guardrail_domains_read_in_display_units_and_words():
    g = {"metric": "hr", "op": "<=", "limit": 0.05, "per_domain": [
        {"domain": "python", "value": 0.0224, "ci_low": 0.0207, "ci_high": 0.0242, "violated": False},
        {"domain": "billing", "value": 0.0691, "ci_low": 0.0665, "ci_high": 0.0718, "violated": True},
        {"domain": "legal", "value": 0.027, "ci_low": None, "ci_high": None, "violated": False}]}
    df = report.guardrail_domains_frame(g)
    assert df.columns == ["domain", "HR", "95% CI", "limit", "status"]
    # the violated domain first, then the highest value
    assert df.rows() == [("billing", "6.91%", "6.65% to 7.18%", "≤ 5.00%", "⚠ violated"),
                         ("legal", "2.70%", "n/a", "≤ 5.00%", "✔ held"),
                         ("python", "2.24%", "2.07% to 2.42%", "≤ 5.00%", "✔ held")]


def test_a_run_in_progress_when_audited_says_how_it_ended():
    runs = [{"run_id": "r1", "command": "demo", "started_at": "2026-12-03T07:49:19.24", "status": "running",
             "in_window": False, "built_this_warehouse": True, "checks": 191, "critical_failures": 0, "warnings": 3},
            {"run_id": "r0", "command": "run", "started_at": "2026-11-20T10:00:00", "status": "failed",
             "in_window": True, "built_this_warehouse": False, "checks": 40, "critical_failures": 1, "warnings": 0}]
    df = report.audit_runs_frame(runs, {"r1": "success", "r0": "failed"})
    assert df["status"].to_list() == ["in progress when audited; ended: success", "failed"]
    assert df["started (UTC)"].to_list() == ["2026-12-03 07:49", "2026-11-20 10:00"]
    assert df["why read"].to_list() == ["built this warehouse", "inside the audit window"]
    # no later word on it (the run history lost it): said so; still running: no outcome yet
    assert report.audit_runs_frame(runs[:1], {})["status"].to_list() == ["in progress when audited; outcome not known"]
    assert report.audit_runs_frame(runs[:1], {"r1": "running"})["status"].to_list() == ["in progress when audited"]
    # the audit did not flag a run it saw in progress: one that failed later is named
    assert report.ended_badly_after_audit(runs, {"r1": "failed", "r0": "failed"}) == ["r1"]
    assert report.ended_badly_after_audit(runs, {"r1": "success"}) == []
    # neither in the window nor the builder: no reason invented; a NaN count is no count
    odd = {**runs[1], "in_window": False, "checks": float("nan")}
    assert report.audit_runs_frame([odd], {}).row(0)[4:6] == ("—", None)


def test_audit_history_names_each_flagged_check_once_with_a_count():
    history = [{"audit_id": "a2", "created_at": "2026-12-03T07:49:25.123", "as_of": "2026-10-01", "score": -6.0,
                "verdict": "iterate", "decision": None, "signed_by": None, "signed_at": None, "next_due": None,
                "flags": ["decay: tcr is at its red line", "decay: hr heads to red", "drift (minor): domain shifted",
                          "guardrail: hr <= 0.05 violated in billing"]},
               {"audit_id": "a1", "created_at": "2026-08-01T09:00:00", "as_of": "2026-08-01", "score": 1.5,
                "verdict": "keep", "decision": "keep", "signed_by": "Ana", "signed_at": "2026-08-02T10:11:12",
                "next_due": "2026-09-27", "flags": []}]
    df = report.audit_history_frame(history)
    assert df.columns == ["audit", "recorded (UTC)", "as of", "score", "recommendation", "decision", "signed by",
                          "signed (UTC)", "next due", "flagged"]
    assert df.row(0) == ("a2", "2026-12-03 07:49", "2026-10-01", "−6.0", "iterate", "—", "—", "—", "—",
                         "decay ×2, guardrail; minor shifts: drift")  # drift was ok: not listed as flagged
    assert df.row(1)[-4:] == ("Ana", "2026-08-02 10:11", "2026-09-27", "—")
    only_minor = [{**history[1], "flags": ["drift (minor): domain shifted", "drift (minor): feature shifted"]}]
    assert report.audit_history_frame(only_minor)["flagged"][0] == "minor shifts: drift ×2"
    assert report.audit_history_frame(history, for_csv=True)["flagged"][0] == "; ".join(history[0]["flags"])


def test_a_tile_warning_says_what_it_means_for_the_figure():
    dup = {"stage": "staging", "table": "meta_ingest_summary", "expectation": "no_repeated_rows", "text": "…"}
    null = {"stage": "raw", "table": "src_interactions", "expectation": "outcome_not_null", "text": "…"}
    gap = {"stage": "metrics", "table": "l6_daily", "expectation": "no_missing_days", "text": "…"}
    assert report.warning_effect([]) == ""
    assert report.warning_effect([dup]) == "⚠ 1 data-quality warning: rows removed or quarantined before this figure"
    assert report.warning_effect([dup, null]).startswith("⚠ 2 data-quality warnings: rows removed")
    # with the warned run's ingest summary: how many rows of the figure's input tables, and
    # their share of those tables' rows read. TCR reads interactions and users:
    # 14 + 0 duplicates, 5 + 0 quarantined of 584,075 + 20,000 read: 19 / 604,075 = 0.0031% (< 0.01%)
    ingest = pl.DataFrame({"run_id": ["r1"] * 3, "table_name": ["interactions", "user_activity", "users"],
                           "rows_read": [584_075, 978_972, 20_000], "rows_kept": [584_056, 978_963, 20_000],
                           "rows_deduplicated": [14, 9, 0], "rows_quarantined": [5, 0, 0]})
    assert report.warning_effect([{**dup, "run_id": "r1"}], ingest, ("interactions", "users")) == (
        "⚠ 1 data-quality warning: 14 duplicate and 5 quarantined rows of its input tables left out "
        "(<0.01% of 604,075 read in the run)")
    # a larger share in percent with two decimals: 300 + 9 of 10,000 + 978,972 read = 0.03%
    big = ingest.with_columns(pl.when(pl.col("table_name") == "interactions").then(10_000)
                              .otherwise(pl.col("rows_read")).alias("rows_read"),
                              pl.when(pl.col("table_name") == "interactions").then(300)
                              .otherwise(pl.col("rows_deduplicated")).alias("rows_deduplicated"),
                              pl.lit(0).alias("rows_quarantined"))
    assert report.warning_effect([{**dup, "run_id": "r1"}], big, ("interactions", "user_activity")).endswith(
        "309 duplicate and 0 quarantined rows of its input tables left out (0.03% of 988,972 read in the run)")
    # another run's summary, or no row of the inputs left out: the plain words
    assert report.warning_effect([{**dup, "run_id": "r0"}], ingest).endswith("rows removed or quarantined before this figure")
    assert report.warning_effect([{**dup, "run_id": "r1"}], ingest, ("users",)).endswith(
        "rows removed or quarantined before this figure")
    # a later stage's warning is about the data the figure rests on: named, not explained away
    assert report.warning_effect([dup, gap]) == (
        "⚠ 2 data-quality warnings: no missing days on l6_daily (it may bear on this figure)")


def test_a_domain_past_its_limit_is_never_called_held():
    # the audit calls a domain violated only when its whole interval is past the limit: 5.6%
    # with an interval back to 4.8% is not violated, and not "held" either
    g = {"metric": "hr", "op": "<=", "limit": 0.05, "per_domain": [
        {"domain": "a", "value": 0.020, "ci_low": 0.018, "ci_high": 0.022, "violated": False},
        {"domain": "b", "value": 0.056, "ci_low": 0.048, "ci_high": 0.064, "violated": False},
        {"domain": "c", "value": None, "ci_low": None, "ci_high": None, "violated": False}]}
    df = report.guardrail_domains_frame(g)
    assert df.rows() == [("b", "5.60%", "4.80% to 6.40%", "≤ 5.00%",
                          "past the limit, not conclusive (its interval crosses it)"),
                         ("a", "2.00%", "1.80% to 2.20%", "≤ 5.00%", "✔ held"),
                         ("c", "n/a", "n/a", "≤ 5.00%", "n/a")]
    # a floor (≥): the lowest value is the furthest past it and comes first
    floor = {"metric": "tcr", "op": ">=", "limit": 0.70, "per_domain": [
        {"domain": "x", "value": 0.90, "ci_low": None, "ci_high": None, "violated": False},
        {"domain": "y", "value": 0.60, "ci_low": None, "ci_high": None, "violated": True}]}
    assert report.guardrail_domains_frame(floor)["domain"].to_list() == ["y", "x"]
    assert report.guardrail_domains_frame({"metric": None, "per_domain": []}).columns[1] == "value"


def test_an_interval_near_zero_keeps_its_small_end_in_dollars():
    from pipelines import charts

    # at the larger end's scale the small end would read "−$0.0k": a signed zero
    assert charts.fmt_usd_range(-30.0, 15_009.0) == "−$30 to +$15.0k"
    assert charts.fmt_usd_range(-4_000.0, 1_200_000.0) == "−$4,000 to +$1.20M"


def test_what_if_interval_is_exact_only_when_it_has_no_width():
    # $146 wide on $1.6M printed the same at the $M scale and was called exact
    wide = report.what_if_interval({"usd_change": 1_597_164.0, "usd_ci_low": 1_597_091.0, "usd_ci_high": 1_597_237.0})
    assert wide.startswith("95% CI +$1,597,091 to +$1,597,237"), wide
    exact = report.what_if_interval({"usd_change": 1_000.0, "usd_ci_low": 1_000.0, "usd_ci_high": 1_000.2})
    assert exact.startswith("No sampling interval (+$1,000)"), exact


def test_a_warning_not_about_rows_is_not_called_removed_rows():
    fresh = {"stage": "staging", "table": "stg_interactions", "expectation": "freshness_ts",
             "applies_to": "data_span"}
    assert report.warning_effect([fresh]).endswith(": freshness ts on stg_interactions (it may bear on this figure)")
    assert "on None" not in report.warning_effect([{"stage": "metrics", "expectation": "x"}])


def test_a_diagram_box_gives_a_narrow_interval_as_its_half_width():
    from pipelines import charts

    chain = {"name": "TTA → productivity value", "usd_impact": 1_597_164.0, "usd_ci_low": 1_597_091.0,
             "usd_ci_high": 1_597_237.0, "impact_method": ALONE, "assumptions": {"user_hour_value_usd": {}},
             "steps": [{"from": "tta_p50_s", "to": "productivity_value_usd", "estimate": 1.0, "ci_low": 1.0,
                        "ci_high": 1.0, "method": "measured"}],
             "nodes": [{"node": "tta_p50_s", "value": 8.3}, {"node": "productivity_value_usd", "label": "Productivity"}]}
    last = [a for a in charts.chain_diagram(chain).layout.annotations if not a.showarrow and a.y == 0.45][-1]
    # "[+$1,597,091, +$1,597,237]" widened the box into its neighbour; the $1.60M ends print alike
    assert last.text.split("<br>")[3:6] == ["<b>+$1.60M</b>", "(gain)", "±$73"]


def test_an_edge_out_of_an_ai_metric_reads_per_point_not_per_share():
    from pipelines import charts

    # −6.33 contacts per 1,000 per share (a TCR move of 100 points) is −0.0633 per point
    tcr = {"from": "tcr", "to": "support_contacts_per_1k", "estimate": -6.334, "ci_low": -11.92, "ci_high": -0.7509,
           "unit": "(contacts per 1,000 AI interactions) per share"}
    d = charts.step_for_display(tcr)
    assert (charts.fmt_num(d["estimate"]), charts.fmt_interval(d)) == ("−0.0633", "[−0.119, −0.00751]")
    assert d["unit"] == "contacts per 1,000 AI interactions per +1 pt of TCR"
    cpvo = {"from": "cpvo_usd", "to": "valid_outputs", "estimate": -53_743_744.0, "ci_low": -53_743_744.0,
            "ci_high": -53_743_744.0, "unit": "valid outputs per (USD per valid output)"}
    d = charts.step_for_display(cpvo)
    assert charts.fmt_num(d["estimate"]) == "−53,744" and d["unit"] == "valid outputs per +$0.001 of CPVO"
    assert charts.step_for_display({"from": "tta_p50_s", "estimate": -0.0191, "unit": "(minutes per task) per second"}
                                   )["unit"] == "minutes per task per +1 s of TTA p50"
    # an edge between two downstream nodes is left as it is, and so is the CSV
    later = {"from": "agent_hours", "estimate": 48.0, "unit": "USD per hour"}
    assert charts.step_for_display(later) is later
    chain = {"steps": [tcr], "nodes": [{"node": "tcr", "label": "Task Completion Rate"}]}
    assert report.steps_frame(chain)["estimate"].to_list() == ["−0.0633"]
    assert report.steps_frame(chain, for_csv=True)["estimate"].to_list() == [-6.334]


def test_the_pnl_box_is_coloured_by_its_reading():
    from pipelines import charts

    def box(usd, lo, hi):
        chain = {"name": "c", "usd_impact": usd, "usd_ci_low": lo, "usd_ci_high": hi, "impact_method": ALONE,
                 "steps": [{"from": "hr", "to": "review_cost_usd", "estimate": 1.0, "ci_low": 1.0, "ci_high": 1.0}],
                 "nodes": [{"node": "hr", "value": 0.03}, {"node": "review_cost_usd", "label": "Review cost"}]}
        last = [a for a in charts.chain_diagram(chain).layout.annotations if not a.showarrow and a.y == 0.45][-1]
        return last.bordercolor, last.text.split("<br>")[4]

    # a cost was drawn green like a gain; the word inside says the reading too
    assert box(-251_762.0, -254_035.0, -249_489.0) == (charts.STATUS_COLORS["red"], "(cost)")
    assert box(6_262.0, 769.0, 11_756.0) == (charts.STATUS_COLORS["green"], "(gain)")
    assert box(7_250.0, -510.0, 15_009.0) == (charts.STATUS_COLORS["n/a"], "(no measurable effect)")


def test_audit_checks_line_says_minor_and_inconclusive():
    f = {"flagged": {"decay": True, "drift": False, "alignment": False, "guardrails": True, "calibration": None},
         "alignment": {"inconclusive": True, "flagged": False},
         "drift": {"domain": {"flagged": False, "shift_detected": True}, "note": "x"}}
    assert report.audit_checks_line(f) == (
        "**decay** ⚠ flagged · **drift** ✔ ok (minor shifts) · **alignment** ? inconclusive · "
        "**guardrails & efficiency** ⚠ flagged · **calibration** – not checked")
    plain = {"flagged": {"drift": False, "alignment": False}, "drift": {"domain": {"shift_detected": False}},
             "alignment": {"inconclusive": False}}
    assert report.audit_checks_line(plain) == "**drift** ✔ ok · **alignment** ✔ ok"


def test_a_diagram_box_shows_its_holdout_value_and_the_caption_says_how_to_read_it():
    from pipelines import charts

    # agent hours 1,462 on the treatment population against the holdout's 1,613 (scaled): the
    # P&L box's +$7,250 is their gap × $48 (151 h × $48 = $7,248), which the boxes now show
    chain = {"name": "TCR → support cost", "ai_metric": "tcr", "usd_impact": 7_250.0, "usd_ci_low": -510.0,
             "usd_ci_high": 15_009.0, "impact_method": CAUSAL, "assumptions": {"agent_cost_per_hour_usd": {}},
             "steps": [{"from": "tcr", "to": "agent_hours", "estimate": 1.0, "ci_low": 0.5, "ci_high": 1.5},
                       {"from": "agent_hours", "to": "support_cost_usd", "estimate": 48.0, "ci_low": 48.0,
                        "ci_high": 48.0}],
             "nodes": [{"node": "tcr", "label": "Task Completion Rate", "value": 0.745, "counterfactual": None},
                       {"node": "agent_hours", "label": "Support agent hours", "value": 1461.6, "unit": "hours",
                        "counterfactual": 1612.6},
                       {"node": "support_cost_usd", "label": "Support cost", "value": 70_156.0,
                        "counterfactual": 77_405.8}]}
    chain["steps"][0]["basis"] = ("WLS of agent hours on tcr across 81 week x segment cells (weights: interactions; "
                                  "HC1 errors; segment fixed effects)")
    arrows = [a for a in charts.chain_diagram(chain).layout.annotations if a.hovertext]
    # an arrow's basis on hover, in lines of about 60 characters (one line ran past the chart)
    assert [a.hovertext.replace("<br>", " ") for a in arrows] == [chain["steps"][0]["basis"]]
    assert max(len(x) for x in arrows[0].hovertext.split("<br>")) <= 60 < len(chain["steps"][0]["basis"])
    boxes = [a.text for a in charts.chain_diagram(chain).layout.annotations if not a.showarrow and a.y == 0.45]
    assert boxes[1].split("<br>")[-1] == "<span style='font-size:13px'>holdout, scaled: 1,613</span>"
    assert "holdout," not in boxes[0] and "holdout," not in boxes[2]
    cap = report.diagram_caption(chain)
    assert "with the holdout's beside them" in cap and "P&L impact against the holdout" in cap
    alone = {**chain, "impact_method": ALONE, "nodes": [{**n, "counterfactual": 0.0} for n in chain["nodes"]]}
    cap = report.diagram_caption(alone)
    assert "holdout's beside" not in cap and "on the treatment population alone" in cap


def test_threshold_ladder_and_score_scale_read_cleanly():
    from pipelines import charts

    fig = charts.threshold_ladder(None, "t")
    assert "per 100 queries (per 100 queries)" not in str(fig.to_dict()), "the unit once"
    assert "Human-in-the-Loop interventions per 100 queries" in str(fig.to_dict())
    assert report.score_scale_text({"low": -6.5, "high": 2.5, "keep_min": 0.0}) == \
        "on a scale of −6.5 to +2.5; keep at 0 or more"


def test_warning_help_explains_only_row_warnings_as_removed_rows():
    dup = {"stage": "staging", "applies_to": "metrics", "text": "duplicates removed"}
    gap = {"stage": "metrics", "table": "l6_daily", "expectation": "no_missing_days", "text": "a day missing"}
    assert report.warning_help([dup]).startswith("The figure is computed without the rows at fault")
    assert report.warning_help([dup]).endswith("- duplicates removed")
    assert not report.warning_help([dup, gap]).startswith("The figure is computed without")
    assert report.sampling_note(BRIDGE["chains"]) == report.SAMPLING_ONLY_NOTE
    assert report.sampling_note([c for c in BRIDGE["chains"] if not c["assumptions"]]) == ""


def test_runs_caption_counts_in_words():
    from pipelines import report

    assert report.runs_caption(1, 1).startswith("One run so far.")
    assert report.runs_caption(3, 3).startswith("All 3 runs, newest first.")
    assert report.runs_caption(15, 1204).startswith("The latest 15 of 1,204 runs, newest first.")


def test_a_threshold_crossing_worth_dollars_says_when_its_interval_is_sampling_only():
    # TTA crossed green → amber; its chain (TTA → productivity value, resting on two assumptions
    # held exact) moved +$30.0k quarter over quarter in [+$29.9k, +$30.1k]: sampling only.
    # TCR crossed too; its chain rests on no assumption: a plain 95% CI.
    metric_of = {"TTA → productivity value": "tta_p50_s", "RΔ → retained revenue": "retention_delta_pts"}
    bridge = {**BRIDGE, "chains": [{**c, "id": c["name"], "ai_metric": metric_of.get(c["name"], c["ai_metric"])}
                                   for c in BRIDGE["chains"]],
              "waterfall": {"previous_quarter": "2026Q2", "steps": [
                  {"label": "TTA → productivity value", "chain": "TTA → productivity value", "usd_change": 30_000.0,
                   "usd_ci_low": 29_900.0, "usd_ci_high": 30_100.0, "components": []},
                  {"label": "RΔ → retained revenue", "chain": "RΔ → retained revenue", "usd_change": -4_000.0,
                   "usd_ci_low": -6_000.0, "usd_ci_high": -2_000.0, "components": []}]}}
    moved = [{**_m("tta_p50_s", 40.0, "amber"), "previous": 30.0, "previous_status": "green"},
             {**_m("retention_delta_pts", 1.0, "amber"), "previous": 9.0, "previous_status": "green"},
             _m("hitl_per_100", 1.0, "green")]
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True, "metrics": moved}
    bullets = report.summary_bullets(card, bridge)
    [tta] = [b for b in bullets if b.startswith("TTA")]
    assert "change is worth +$30.0k (95% CI +$29.9k to +$30.1k, sampling only)" in tta, tta
    [rd] = [b for b in bullets if b.startswith("RΔ")]
    assert "change is worth −$4,000 (95% CI −$6,000 to −$2,000)." in rd, rd


def test_rd_is_set_beside_the_holdout_test_of_retention():
    # treatment − holdout 7-day retention +0.0225 [+0.0028, +0.0422] = +2.2 pts [+0.3, +4.2]
    causal = {"retained_7d_share": {"diff": 0.0225, "ci_low": 0.0028, "ci_high": 0.0422}}
    line = report.retention_vs_holdout(causal)
    assert line == ("Holdout test: 7-day retention +2.2 pts [+0.3, +4.2] for users offered the AI, whether they "
                    "used it or not, against users never offered it (causal); RΔ compares users who used the AI "
                    "with those who did not")
    # an interval across 0 says so; a negative effect keeps its minus sign; a quarter to date is named
    neg = {"retained_7d_share": {"diff": -0.01, "ci_low": -0.03, "ci_high": 0.01}}
    assert "7-day retention −1.0 pts [−3.0, +1.0], not distinguishable from 0 for users" in \
        report.retention_vs_holdout(neg)
    assert report.retention_vs_holdout(causal, to_date=True).startswith("Holdout test (quarter to date): ")
    assert report.retention_vs_holdout({}) == "" and report.retention_vs_holdout(None) == ""
    assert report.retention_vs_holdout({"retained_7d_share": {"diff": float("nan"), "ci_low": 0, "ci_high": 1}}) == ""
    # in the summary: a bullet of its own when RΔ is reported
    card = {"quarter": "2026Q3", "previous_quarter": "2026Q2", "has_data": True,
            "metrics": [_m("retention_delta_pts", 9.1, "green"), _m("hitl_per_100", 1.0, "green")]}
    assert line + "." in report.summary_bullets(card, {**BRIDGE, "causal": causal})


def test_hr_by_domain_table_reads_like_its_chart():
    # two domains, billing first (higher HR, as the chart sorts them); 0.0650 = 6.50%,
    # interval 5.93–7.10%, 39,442 adjudicated of 40,610 = 97.1%
    df = pl.DataFrame({"domain": ["sql", "billing"], "interactions": [5_000, 40_610], "adjudicated": [4_850, 39_442],
                       "hallucinated": [97, 2_564], "hr": [0.02, 0.0650], "hr_ci_low": [0.0165, 0.0593],
                       "hr_ci_high": [0.0243, 0.0710], "coverage": [0.97, 39_442 / 40_610], "status": ["green", "red"]})
    shown = report.hr_domains_frame(df)
    assert shown.columns == ["domain", "HR", "95% CI", "status", "adjudicated", "interactions", "share adjudicated"]
    assert shown.row(0) == ("billing", "6.50%", "5.93% – 7.10%", "✖ Red", "39,442", "40,610", "97.1%")
    assert shown.row(1)[:2] == ("sql", "2.00%")
    csv = report.hr_domains_frame(df, for_csv=True)
    assert csv["domain"].to_list() == ["billing", "sql"] and csv["hr_pct"][0] == 6.5 and csv["ci_low_pct"][0] == 5.93
    assert report.hr_domains_frame(pl.DataFrame()).is_empty() and report.hr_domains_frame(pl.DataFrame()).columns
    assert report.hr_domains_frame(pl.DataFrame(), for_csv=True).columns[4:8] == ["hr_pct", "ci_low_pct", "ci_high_pct",
                                                                                 "coverage_pct"]
    no_ci = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("hr_ci_high"))
    assert report.hr_domains_frame(no_ci)["95% CI"].to_list() == ["n/a", "n/a"]


def test_durations_read_in_words():
    assert [report.duration_words(s) for s in (6.24, 59.9, 725.0, 5_400.0)] == [
        "6.2 s", "59.9 s", "12 min 5 s", "1 h 30 min"]


def test_pdf_heads_a_chart_page_once(monkeypatch):
    import io

    import plotly.graph_objects as go
    from PIL import Image
    from pypdf import PdfReader

    def text_of(pdf):
        return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    fig = go.Figure(layout={"title": {"text": "Weekly L6 trend — 2026Q3<br><sup>ISO weeks</sup>"}})
    assert report.plain_title(fig) == "Weekly L6 trend — 2026Q3 · ISO weeks"
    args = ("2026Q3", pl.DataFrame({"metric": ["TCR"]}), [])
    # the image carries the title (heading None): no heading printed above it
    png = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(png, format="PNG")
    monkeypatch.setattr(report, "png_bytes", lambda f, **kw: png.getvalue())
    assert "Weekly L6 trend" not in text_of(report.qbr_pdf(*args, [(None, fig)]))
    assert text_of(report.qbr_pdf(*args, [("Named chart", fig)])).count("Named chart") == 1
    # no image (no browser for kaleido, or images=False): the title in words heads the page
    def no_browser(f, **kw):
        raise RuntimeError("no chromium")
    monkeypatch.setattr(report, "png_bytes", no_browser)
    broken = text_of(report.qbr_pdf(*args, [(None, fig)]))
    assert "Weekly L6 trend — 2026Q3 · ISO weeks" in broken and "(chart image unavailable: no chromium)" in broken
    assert "Weekly L6 trend — 2026Q3 · ISO weeks" in text_of(report.qbr_pdf(*args, [(None, fig)], images=False))


def test_audit_notes_read_metric_names_not_ids():
    note = ("no sign of gaming: tcr did not improve, so requery_rate worsening beyond noise is not its price; "
            "hr_coverage held, hr and cpvo_usd too (−0.667 → −0.196 contacts per 1,000 per point of tcr)")
    assert report.plain_names(note) == (
        "no sign of gaming: TCR did not improve, so re-query rate worsening beyond noise is not its price; "
        "HR coverage held, HR and CPVO too (−0.667 → −0.196 contacts per 1,000 per point of TCR)")
    assert report.plain_names("thrash and hrs stay") == "thrash and hrs stay"  # whole ids only
    assert report.plain_names(None) == ""
