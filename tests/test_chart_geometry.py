"""Chart geometry worked out by hand: the metric tiles' SVG sparklines (charts.sparkline_svg:
a 240×36 box with 4 px of padding, the highest week at the top) and Explore's value axes."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pipelines import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_points_gap_and_last_week_by_hand():
    # TCR as fractions: 50%, no value, 70%, 60%. lo 50, hi 70; x step (240 - 8) / 3 = 77.33;
    # y = 4 + (70 - v) / 20 * 28 → 50% at 32.0, 70% at 4.0, 60% at 18.0
    root = _parse(charts.sparkline_svg("tcr", [0.5, None, 0.7, 0.6]))
    assert root.get("viewBox") == "0 0 240 36"
    lines = root.findall(f"{SVG}polyline")
    assert [ln.get("points") for ln in lines] == ["158.7,4.0 236.0,18.0"]  # the run after the gap
    dots = [(c.get("cx"), c.get("cy"), c.get("r")) for c in root.findall(f"{SVG}circle")]
    assert dots == [("4.0", "32.0", "1.5"),    # the lone week before the gap
                    ("236.0", "18.0", "3")]    # the last week's marker
    words = root.find(f"{SVG}title").text
    assert words == "Weekly TCR, 4 weeks: first 50.0%, last 60.0%, lowest 50.0%, highest 70.0%"
    assert root.get("aria-label") == words and root.get("role") == "img"


def test_flat_series_sits_in_the_middle_and_units_follow_the_metric():
    root = _parse(charts.sparkline_svg("tta_p50_s", [6.0, 6.0, 6.0]))
    assert root.find(f"{SVG}polyline").get("points") == "4.0,18.0 120.0,18.0 236.0,18.0"
    assert "first 6.0 s" in root.find(f"{SVG}title").text


def test_a_last_week_without_value_marks_the_last_known_one():
    root = _parse(charts.sparkline_svg("hr", [0.02, 0.04, None]))
    # x step 116: weeks at 4, 120, 236; 4% is the top (4.0), 2% the bottom (32.0)
    assert root.find(f"{SVG}polyline").get("points") == "4.0,32.0 120.0,4.0"
    assert [(c.get("cx"), c.get("cy")) for c in root.findall(f"{SVG}circle")] == [("120.0", "4.0")]


def test_fewer_than_two_weeks_draw_nothing():
    assert charts.sparkline_svg("tcr", []) is None
    assert charts.sparkline_svg("tcr", [0.8]) is None
    assert charts.sparkline_svg("tcr", [None, 0.8, float("nan")]) is None


def test_the_tile_shows_it_as_an_image_with_its_words():
    # st.html's sanitizer drops inline SVG: the tile shows the SVG as a data: image
    import base64
    import re

    tag = charts.sparkline_html("tcr", [0.5, None, 0.7, 0.6])
    src = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', tag).group(1)
    assert base64.b64decode(src).decode() == charts.sparkline_svg("tcr", [0.5, None, 0.7, 0.6])
    words = "Weekly TCR, 4 weeks: first 50.0%, last 60.0%, lowest 50.0%, highest 70.0%"
    assert f'alt="{words}"' in tag and f'title="{words}"' in tag
    assert charts.sparkline_html("tcr", [0.8]) is None


def test_explore_bars_start_at_zero_lines_keep_the_zoom():
    """A bar's length is its value: TCR bars of 67.8% and 80.7% on an axis from 66% made the
    first look a tenth of the second. Lines keep the axis fitted to the values and thresholds."""
    import datetime as dt

    import polars as pl

    df = pl.DataFrame({"period_start": [dt.date(2026, 4, 1), dt.date(2026, 9, 1)], "tcr": [0.807, 0.678]})

    def y_range(kind):
        fig = charts.metric_panels([("", df)], ["tcr"], "month", kind=kind)
        return list(fig.layout.yaxis.range)

    assert y_range("bar")[0] == 0.0
    # lines: from the lowest of values and thresholds (67.8; red 70, green 78) less 15% of the
    # span to the highest (80.7): 67.8 − 0.15 × (80.7 − 67.8) = 65.865
    lo, hi = y_range("line")
    assert lo == pytest.approx(67.8 - 0.15 * (80.7 - 67.8)) and hi == pytest.approx(80.7 + 0.15 * (80.7 - 67.8))


def test_gaming_pairs_keeps_every_pair_and_says_why_one_has_no_change():
    # the demo's audit has four pairs; its "tcr vs completed_escalation_rate" counter-metric is
    # 0 in both windows (no relative change), and the chart used to drop that pair: 3 of 4
    from pipelines import charts

    pairs = [
        {"primary": "tcr", "counter": "requery_rate", "primary_change": -13.9, "counter_change": 11.3},
        {"primary": "tcr", "counter": "completed_escalation_rate", "primary_change": -13.9,
         "counter_change": None, "counter_reference": 0.0, "counter_audit": 0.0},
        {"primary": "hr", "counter": "hr_coverage", "primary_change": 17.3, "counter_change": -0.042},
        {"primary": "cpvo_usd", "counter": "tcr", "primary_change": 10.3, "counter_change": -13.9, "flagged": True},
    ]
    f = charts.gaming_pairs(pairs)
    primary, counter = f.data
    assert len(primary.x) == len(counter.x) == 4
    assert list(counter.y) == [11.3, 0.0, -0.042, -13.9]
    assert list(counter.text) == ["+11.3%", "0 in both windows", "-0.042%", "-13.9%"]
    assert list(primary.text) == ["-13.9%", "-13.9%", "+17.3%", "+10.3%"]
    assert primary.x[3].endswith("⚠ flagged") and primary.x[0].endswith("✔ ok")
    lo, hi = f.layout.yaxis.range  # every bar and its label inside: ±20% of the span beyond
    assert lo == -13.9 - 0.2 * (17.3 + 13.9) and hi == 17.3 + 0.2 * (17.3 + 13.9)


def test_tile_label_drops_only_a_unit_the_value_shows():
    from pipelines import charts, config

    labels = {m: charts.tile_label(m) for m in config.METRICS}
    # the contract's tile_label ("HitL-F — Human-in-the-Loop interventions" was cut at 1280 px)
    assert labels["hitl_per_100"] == "HitL-F — Human-in-the-Loop"  # value: "7.15 per 100"
    assert labels["tcr"] == "TCR — Task Completion Rate"
    assert labels["tta_p50_s"] == "TTA p50 — Time-to-Accuracy (p50)"
    assert all(len(v) <= 32 for v in labels.values()), labels  # one line of a 1280-px tile


def test_explore_panels_label_months_and_quarters_and_name_sides_by_value():
    import datetime as dt

    import polars as pl

    from pipelines import charts

    a = pl.DataFrame({"period_start": [dt.date(2026, 4, 1), dt.date(2026, 7, 1)], "tcr": [0.80, 0.74]})
    b = pl.DataFrame({"period_start": [dt.date(2026, 7, 1)], "tcr": [0.70]})
    f = charts.metric_panels([("Experiment group = treatment", a), ("Experiment group = (none)", b)], ["tcr"],
                             "quarter")
    assert list(f.layout.xaxis.tickvals) == ["2026-04-01", "2026-07-01"]
    assert list(f.layout.xaxis.ticktext) == ["2026Q2", "2026Q3"]  # not Plotly's "Jun 28" under 2026Q3
    titles = [an.text for an in f.layout.annotations if an.yanchor == "bottom"]
    assert titles[:2] == ["TCR (%) — treatment", "TCR (%) — (none)"]
    assert f.layout.title.text.startswith("TCR by quarter — Experiment group: treatment vs (none)")
    m = charts.metric_panels([("", a)], ["tcr"], "month")
    assert list(m.layout.xaxis.ticktext) == ["Apr 2026", "Jul 2026"]
    assert charts.metric_panels([("", a)], ["tcr"], "week").layout.xaxis.tickvals is None  # Plotly's own


def test_fmt_slope_in_display_units_never_in_e_notation():
    from pipelines import charts

    assert charts.fmt_slope("cpvo_usd", 7.4e-05) == "+$0.000074"  # was "+7.4e-05"
    assert charts.fmt_slope("cpvo_usd", -3e-06) == "−$0.0000030"
    assert charts.fmt_slope("tcr", -0.0217) == "−2.17 pts"  # a share's slope in points, a minus sign
    assert charts.fmt_slope("tta_p50_s", 0.243) == "+0.243 s"
    assert charts.fmt_slope("hitl_per_100", 0.525) == "+0.525"
    assert charts.fmt_slope("hr", 0.000004) == "+0.000400 pts"  # three significant digits, as .3g


def test_gaming_pairs_name_metrics_not_columns():
    from pipelines import charts

    f = charts.gaming_pairs([{"primary": "cpvo_usd", "counter": "tcr", "primary_change": 1.0, "counter_change": -2.0},
                             {"primary": "tcr", "counter": "requery_rate", "primary_change": 1.0,
                              "counter_change": 2.0}])
    assert [x.split("<br>")[0] for x in f.data[0].x] == ["CPVO vs TCR", "TCR vs re-queries"]


def test_what_if_cost_box_shows_the_cost_falling_and_the_pnl_rising():
    # a higher TCR lowers support cost by $1,220: the box read "$70.2k → $68.9k, Δ +$1,220"
    from pipelines import charts

    res = {"ai_metric": "tcr", "usd_change": 1_220.0, "usd_ci_low": 161.0, "usd_ci_high": 2_278.0,
           "nodes": [{"node": "tcr", "current": 0.745, "new": 0.80, "change": 0.055},
                     {"node": "agent_hours", "label": "Support agent hours", "current": 1_462.0, "new": 1_436.6,
                      "change": -25.4, "unit": "hours"},
                     {"node": "support_cost_usd", "label": "Support cost", "current": 70_176.0, "new": 68_956.0,
                      "change": -1_220.0}]}
    last = [a for a in charts.what_if_chart(res, "t").layout.annotations if not a.showarrow][-1].text
    lines = last.split("<br>")
    assert lines[1] == "$70.2k → $69.0k"
    assert lines[2:4] == ["<b>Δ −$1,220</b>", "<b>P&L +$1,220</b>"]
    assert lines[4] == "95% CI [+$161, +$2,278]"


def test_decay_panel_says_a_step_not_a_trend_when_steady_since():
    # HitL-F jumped in the week of Aug 17 and stayed near 8.9: the line across the window said
    # "red within 1 wk"; with the step found and steady weeks since, the panel says the step
    step = {"week_start": "2026-08-17", "step": 3.58, "before": 5.3, "after": 8.94, "toward_red": True,
            "since_trend": "flat"}
    d = {"slope_per_week": 0.525, "intercept": 6.0, "ci_low": 0.08, "ci_high": 0.97, "weeks_to_red": 0.3,
         "flagged": True, "level_shift": step}
    weeks = [{"period_start": f"2026-08-{day:02d}", "value": v} for day, v in
             ((3, 5.2), (10, 5.4), (17, 9.0), (24, 8.8), (31, 9.1))]
    fig = charts.decay_small_multiples({"hitl_per_100": {**d, "weeks": weeks}})
    [title] = [a.text for a in fig.layout.annotations if a.text.startswith("HitL-F")]
    assert "step +3.58, week of Aug 17" in title and "steady at 8.94 per 100 (amber) · ⚠ flagged" in title
    assert "red within" not in title
    # a step with a worsening trend since keeps the trend's words, the step beside them
    worse = {**d, "weeks": weeks, "level_shift": {**step, "since_trend": "worse"}}
    [title] = [a.text for a in charts.decay_small_multiples({"hitl_per_100": worse}).layout.annotations
               if a.text.startswith("HitL-F")]
    assert "+0.525/wk · red within 1 wk" in title and "step, week of Aug 17, worsening since · ⚠ flagged" in title
    dotted = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert len(dotted) == 1 and str(dotted[0].x0).startswith("2026-08-13")  # half a week before the step's Monday
