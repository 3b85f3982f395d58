"""Plotly figure builders and display formatting for the dashboard (no data access).

Every figure has a title and axis titles with units, large type that reads on a
projector, and shows a status by a word or a marker shape as well as a colour.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from typing import Any, Iterable

import plotly.graph_objects as go
import polars as pl

from pipelines import bridge_metrics, config
from pipelines.bridge import edge_kind  # the diagram's edge words; the pages' tables use the same

FONT = dict(family="Source Sans Pro, DejaVu Sans, Arial, sans-serif", size=16, color="#1f2933")
STATUS_COLORS = {"green": "#1b7f3b", "amber": "#b86e00", "red": "#c62828", "n/a": "#6b7280"}
BAND_COLORS = {"green": "rgba(27,127,59,0.10)", "amber": "rgba(184,110,0,0.10)", "red": "rgba(198,40,40,0.10)"}
# glyphs every font on the machine has (DejaVu): no colour emoji needed
# a chain's P&L box by its reading (pnl_word): (fill, border)
PNL_BOX = {"gain": ("#e8f5ec", "#1b7f3b"), "cost": ("#fdecea", "#c62828"),
           "no measurable effect": ("#f1f2f4", "#6b7280"), "none": ("#f1f2f4", "#6b7280"),
           "n/a": ("#f1f2f4", "#6b7280")}
STATUS_ICONS = {"green": "✔", "amber": "⚠", "red": "✖", "n/a": "–"}
STATUS_WORDS = {"green": "Green", "amber": "Amber", "red": "Red", "n/a": "No data"}
STATUS_SYMBOLS = {"green": "circle", "amber": "diamond", "red": "x", "n/a": "circle-open"}
SERIES = ["#1f5fa8", "#d9480f", "#5f3dc4", "#0b7285", "#5c940d", "#a61e4d"]
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
UNIT_TEXT = {"share": "%", "seconds": "s", "per 100 queries": "per 100 queries", "points": "pts", "USD": "USD"}
SHORT = {"tcr": "TCR", "hr": "HR", "tta_p50_s": "TTA p50", "hitl_per_100": "HitL-F",
         "retention_delta_pts": "RΔ", "cpvo_usd": "CPVO",
         # bridge measures (Explore): short names that also travel in the URL
         "support_contacts_per_1k": "Tickets/1k", "agent_hours": "Agent h", "support_cost_usd": "Support $",
         "corrections_escalations_per_100": "Corr+esc/100", "human_review_hours": "Review h",
         "review_cost_usd": "Review $", "valid_outputs": "Valid outputs", "minutes_saved_per_task": "Min saved/task",
         "user_hours_saved": "User h saved", "productivity_value_usd": "Productivity $", "ai_spend_usd": "AI spend $"}
GRAIN_WORDS = {"day": "day", "week": "ISO week (Mon)", "month": "month", "quarter": "quarter", "all": "whole range"}
# the time axis of a period chart, in words ("period start (UTC, ISO week (Mon))" before)
PERIOD_AXIS = {"day": "Day (UTC)", "week": "Start of each ISO week (Monday, UTC)",
               "month": "Month (UTC)", "quarter": "Quarter (UTC)"}


# --------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------
def _meta(metric: str) -> dict:
    """An L6 metric's contract entry, or a bridge measure's {"label", "unit", "kind"}."""
    if metric in config.METRICS:
        return config.metric_contract()["metrics"][metric]
    return bridge_metrics.meta(metric)


def label(metric: str) -> str:
    return _meta(metric)["label"]


def has_thresholds(metric: str) -> bool:
    return metric in config.METRICS


def scale(metric: str) -> float:
    return 100.0 if _meta(metric)["unit"] == "share" else 1.0


def unit(metric: str) -> str:
    """The metric's or measure's unit as the contract names it ("share", "USD", "seconds")."""
    return _meta(metric)["unit"]


def unit_text(metric: str) -> str:
    return UNIT_TEXT.get(_meta(metric)["unit"], _meta(metric)["unit"])


def axis_title(metric: str) -> str:
    return f"{SHORT.get(metric, metric)} ({unit_text(metric)})"


def _bad(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_value(metric: str, v: float | None, extra: int = 0) -> str:
    """A metric value in display units: 78.4%, 6.1 s, 5.2 per 100, +8.1 pts, $0.0042.
    `extra`: more decimals than usual (fmt_beside)."""
    if _bad(v):
        return "insufficient data" if metric == "retention_delta_pts" else "no data"
    unit = _meta(metric)["unit"]
    if unit == "share":
        return f"{100 * v:.{1 + extra}f}%"
    if unit == "seconds":
        return f"{v:.{1 + extra}f} s"
    if unit == "per 100 queries":
        return f"{v:.{2 + extra}f} per 100"
    if unit == "points":
        return f"{v:+.{1 + extra}f} pts"
    if unit == "USD":
        if metric in config.METRICS:
            return f"${v:.{4 + extra}f}"
        return fmt_usd(v) if abs(v) >= 100 else f"${v:,.2f}"
    if unit == "hours":
        return f"{v:,.1f} h"
    if unit in ("valid outputs", "users"):
        return f"{v:,.0f}"
    if metric in config.METRICS:
        return f"{v:.3g}"
    return f"{v:,.2f} {unit}"


def fmt_change(metric: str, change: float | None) -> str | None:
    """A change already in display units (points for shares)."""
    if _bad(change):
        return None
    unit = _meta(metric)["unit"]
    if unit == "share":
        return f"{change:+.1f} pts"
    if unit == "seconds":
        return f"{change:+.2f} s"
    if unit == "per 100 queries":
        return f"{change:+.2f} per 100"
    if unit == "points":
        return f"{change:+.1f} pts"
    if unit == "USD":
        return f"{'+' if change >= 0 else '−'}${abs(change):.4f}"
    return f"{change:+.3g}"


def change_word(metric: str, change: float | None) -> str | None:
    """Whether a change is better or worse for an L6 metric (its direction), in a word, so
    the reading never rests on the delta's color alone."""
    if _bad(change) or metric not in config.METRICS:
        return None
    if change == 0:
        return "no change"
    higher = config.metric_contract()["metrics"][metric]["direction"] == "higher"
    return "better" if (change > 0) == higher else "worse"


def tile_label(metric: str) -> str:
    """A scorecard tile's title: the short name and the contract's `tile_label` (else its
    label), without a trailing unit the value already shows ("RΔ — Retention Delta (7-day)"):
    at 1280 px a tile's title holds about 32 characters beside its help icon."""
    meta = _meta(metric)
    label, unit = meta.get("tile_label") or meta["label"], meta["unit"]
    if label.endswith(" " + unit):
        label = label[: -len(unit) - 1]
    return f"{SHORT.get(metric, metric)} — {label}"


def fmt_slope(metric: str, per_week: float) -> str:
    """A trend per week in display units, never in e-notation: "+0.089 pts" for a share,
    "+0.243 s", "+$0.000074" for CPVO (which moves in millionths of a dollar)."""
    v = per_week * scale(metric)
    unit = _meta(metric)["unit"]
    if unit == "USD":
        digits = max(2, 1 - math.floor(math.log10(abs(v)))) if v else 2  # two significant digits
        return f"{'+' if v >= 0 else '−'}${abs(v):.{digits}f}"
    text = f"{v:+.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:+.2e}"
    if "e" in text:  # tiny: as many decimals as it takes
        digits = 2 - math.floor(math.log10(abs(v)))
        text = f"{v:+.{digits}f}"
    return text.replace("-", "−") + {"share": " pts", "seconds": " s", "points": " pts"}.get(unit, "")


def fmt_beside(metric: str, v: float | None, limit: float | None) -> tuple[str, str]:
    """A value and the limit it is read against, in display units, with as many more
    decimals (up to 4) as it takes for two different numbers not to print the same: a CPVO
    of $0.0040245 against a $0.0040 limit reads $0.00402 against $0.00400, not $0.0040
    against $0.0040."""
    for extra in range(5):
        a, b = fmt_value(metric, v, extra), fmt_value(metric, limit, extra)
        if a != b or _bad(v) or _bad(limit) or v == limit:
            return a, b
    return a, b


def fmt_usd(v: float | None, signed: bool = False, exact: bool = False, cents: bool = False,
            scale_of: tuple | None = None) -> str:
    """"$1,234", "$39.2k", "$1.25M" ("+"/"−" with `signed`); `exact`: whole dollars, never
    abbreviated; `cents`: "$4.71", the sign of the value in cents ("$0.00", never "−$0.00");
    `scale_of`: values whose largest picks the scale (an interval's ends print alike)."""
    if _bad(v):
        return "n/a"
    if cents:
        v = round(v, 2) + 0.0
    sign = "+" if signed and v > 0 else ("−" if v < 0 else "")
    a = abs(v)
    if cents:
        return sign + f"${a:,.2f}"
    if exact:
        return sign + f"${a:,.0f}"
    scale = abs(v) if scale_of is None else max(abs(x) for x in scale_of if not _bad(x))
    if scale >= 1e6:
        body = f"${a / 1e6:.2f}M"
    elif scale >= 1e4:
        body = f"${a / 1e3:.1f}k"
    else:
        body = f"${a:,.0f}"
    return sign + body


def fmt_usd_range(lo: float | None, hi: float | None, signed: bool = True, sep: str = " to ") -> str:
    """An interval's two ends in one scale ("−$0.5k to +$15.0k", never "−$510 to +$15.0k"):
    the scale of the larger end; in whole dollars when the scale would print both ends alike
    ("+$1,597,091 to +$1,597,237", not "+$1.60M to +$1.60M")."""
    if _bad(lo) or _bad(hi):
        return "n/a"
    a, b = fmt_usd(lo, signed, scale_of=(lo, hi)), fmt_usd(hi, signed, scale_of=(lo, hi))
    if a == b and lo != hi:
        a, b = fmt_usd(lo, signed, exact=True), fmt_usd(hi, signed, exact=True)
    # an end that rounds to nothing at the shared scale ("−$0.0k") in whole dollars ("−$30")
    zero = re.compile(r"^[+−]?\$0(\.0+)?[kM]$")
    a = fmt_usd(lo, signed) if zero.match(a) else a
    b = fmt_usd(hi, signed) if zero.match(b) else b
    return f"{a}{sep}{b}"


def status_text(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '')} {STATUS_WORDS.get(status, status)}"


OPS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


def threshold_short(metric: str) -> str:
    m = _meta(metric)
    return (f"green {OPS[m['green_op']]} {_fmt_threshold(metric, m['green'])}, "
            f"red {OPS[m['red_op']]} {_fmt_threshold(metric, m['red'])}")


def _fmt_threshold(metric: str, t: float) -> str:
    unit = _meta(metric)["unit"]
    if unit == "share":
        return f"{100 * t:g}%"
    if unit == "USD":
        return f"${t:g}"
    if unit == "points":
        return f"{t:+g} pts"
    if unit == "seconds":
        return f"{t:g} s"
    return f"{t:g}"


# --------------------------------------------------------------------------------------
# figure assembly: traces, shapes and annotations are collected as plain dicts and the
# Figure is validated once (plotly's add_hrect/add_hline/make_subplots cost ~100 ms each)
# --------------------------------------------------------------------------------------
_TEMPLATE: go.layout.Template | None = None


def _template() -> go.layout.Template:
    """plotly_white's layout and the defaults of the two trace types with any (bar, scatter;
    waterfall has none): the same look, but a figure validates in ~5 ms instead of ~13 ms,
    since the full template carries defaults for some 25 trace types this app never draws."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import plotly.io as pio

        white = pio.templates["plotly_white"]
        _TEMPLATE = go.layout.Template(layout=white.layout, data=dict(bar=white.data.bar, scatter=white.data.scatter))
    return _TEMPLATE


class _Fig:
    def __init__(self) -> None:
        self.data: list[dict] = []
        self.shapes: list[dict] = []
        self.annotations: list[dict] = []
        self.layout: dict = {}

    def axis(self, name: str, **kw) -> None:
        self.layout.setdefault(name, {}).update(kw)

    def build(self, title: str, height: int = 440, **kw) -> go.Figure:
        layout = dict(
            title=dict(text=title, font=dict(size=22), x=0.0, xanchor="left"),
            font=FONT, template=_template(), height=height,
            margin=dict(l=70, r=30, t=80, b=70),
            legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
            hoverlabel=dict(font_size=15), shapes=self.shapes, annotations=self.annotations)
        layout.update(self.layout)
        layout.update(kw)
        return go.Figure(data=self.data, layout=layout)


def _ax(i: int) -> str:
    return "" if i == 1 else str(i)


def _hrect(y0: float, y1: float, color: str, axis: int = 1) -> dict:
    return dict(type="rect", xref=f"x{_ax(axis)} domain", yref=f"y{_ax(axis)}", x0=0, x1=1, y0=y0, y1=y1,
                fillcolor=color, line_width=0, layer="below")


def _hline(y: float, color: str, axis: int = 1, dash: str = "dash", width: float = 1.5) -> dict:
    return dict(type="line", xref=f"x{_ax(axis)} domain", yref=f"y{_ax(axis)}", x0=0, x1=1, y0=y, y1=y,
                line=dict(color=color, dash=dash, width=width))


def _label(text: str, y: float, color: str, axis: int = 1, where: str = "left", above: bool = True) -> dict:
    return dict(text=text, xref=f"x{_ax(axis)} domain", yref=f"y{_ax(axis)}", x=0.005 if where == "left" else 0.995,
                y=y, xanchor="left" if where == "left" else "right", yanchor="bottom" if above else "top",
                showarrow=False, font=dict(size=13, color=color))


def empty_figure(title: str, message: str, height: int = 300) -> go.Figure:
    f = _Fig()
    f.annotations.append(dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                              font=dict(size=18, color="#52606d")))
    f.axis("xaxis", visible=False)
    f.axis("yaxis", visible=False)
    return f.build(title, height=height)


# --------------------------------------------------------------------------------------
# L6 charts
# --------------------------------------------------------------------------------------
def _bands(f: _Fig, metric: str, lo: float, hi: float, axis: int = 1, labels: bool = True,
           from_zero: bool = False) -> None:
    """Green / amber / red bands and the two threshold lines (labelled in words). With
    `from_zero` (bars: a bar's length is its value) the axis reaches zero."""
    m = _meta(metric)
    s = scale(metric)
    g, r = m["green"] * s, m["red"] * s
    higher = m["direction"] == "higher"
    top, bottom = max(hi, g, r), min(lo, g, r)
    pad = (top - bottom) * 0.15 or abs(top) * 0.15 or 1
    top, bottom = top + pad, bottom - pad
    if from_zero and bottom + pad >= 0:
        bottom = 0.0
    elif from_zero and top - pad <= 0:
        top = 0.0
    if higher:
        regions = [("green", g, top), ("amber", r, g), ("red", bottom, r)]
    else:
        regions = [("green", bottom, g), ("amber", g, r), ("red", r, top)]
    for status, y0, y1 in regions:
        f.shapes.append(_hrect(y0, y1, BAND_COLORS[status], axis))
    for status, y, op in (("green", g, m["green_op"]), ("red", r, m["red_op"])):
        f.shapes.append(_hline(y, STATUS_COLORS[status], axis))
        if labels:
            # the label sits on the side of the line its own colour band is on
            above = (status == "green") == higher
            f.annotations.append(_label(f"{status} {OPS.get(op, op)} {_fmt_threshold(metric, y / s)}", y,
                                        STATUS_COLORS[status], axis, above=above))
    f.axis(f"yaxis{_ax(axis)}", range=[bottom, top])


def _draw_series(f: _Fig, series: list[tuple[str, pl.DataFrame]], metric: str, kind: str, axis: int = 1,
                 color_from: int = 0, legend: bool = True) -> list[float]:
    """One metric's traces (one per named frame) on axis `axis`; returns the plotted values."""
    label = SHORT.get(metric, metric)
    s = scale(metric)
    values: list[float] = []
    ref = dict(xaxis=f"x{_ax(axis)}", yaxis=f"y{_ax(axis)}")
    for i, (name, df) in enumerate(series):
        if df is None or df.is_empty() or metric not in df.columns:
            continue
        x = [str(d) for d in df["period_start"].to_list()]
        raw = df[metric].to_list()
        y = [None if _bad(v) else v * s for v in raw]
        values += [v for v in y if v is not None]
        st_col = f"{metric}_status"
        if not has_thresholds(metric):  # a bridge measure: no contract threshold, no status
            statuses = [None] * len(raw)
        elif st_col in df.columns:
            statuses = df[st_col].to_list()
        else:
            statuses = [config.status(metric, v) for v in raw]
        hover = [f"{name + ' · ' if name else ''}{p}: {fmt_value(metric, v)}"
                 + (f" — {status_text(stt)}" if stt else "") for p, v, stt in zip(x, raw, statuses)]
        color = SERIES[(color_from + i) % len(SERIES)]
        err = None
        if metric == "retention_delta_pts" and "rd_ci_low" in df.columns:
            lo, hi = df["rd_ci_low"].to_list(), df["rd_ci_high"].to_list()
            err = dict(type="data", symmetric=False,
                       array=[None if _bad(h) or _bad(v) else h - v for h, v in zip(hi, raw)],
                       arrayminus=[None if _bad(lw) or _bad(v) else v - lw for lw, v in zip(lo, raw)],
                       color=color, thickness=1.2)
            values += [v for v in lo + hi if not _bad(v)]
        if kind == "bar":
            f.data.append(dict(type="bar", x=x, y=y, name=name or label, marker=dict(color=color), error_y=err,
                               hovertext=hover, hoverinfo="text", showlegend=legend, **ref,
                               text=[STATUS_ICONS.get(stt, "") for stt in statuses], textposition="outside"))
        else:
            f.data.append(dict(type="scatter", x=x, y=y, name=name or label, mode="lines+markers",
                               line=dict(color=color, width=3), showlegend=legend, **ref,
                               marker=dict(size=11, symbol=[STATUS_SYMBOLS.get(stt, "circle") for stt in statuses],
                                           color=color, line=dict(width=1, color="white")),
                               error_y=err, hovertext=hover, hoverinfo="text", connectgaps=False))
        if metric == "tta_p50_s" and "tta_p90_s" in df.columns:
            y90 = [None if _bad(v) else v for v in df["tta_p90_s"].to_list()]
            values += [v for v in y90 if v is not None]
            f.data.append(dict(type="scatter", x=x, y=y90, name=f"{name + ' ' if name else ''}TTA p90", mode="lines",
                               line=dict(color=color, width=2, dash="dot"), hoverinfo="x+y", showlegend=legend,
                               **ref))
    return values


def _value_axis(f: _Fig, metric: str, lo: float, hi: float, axis: int = 1, labels: bool = True,
                from_zero: bool = False) -> None:
    """Threshold bands for an L6 metric; a plain range from zero for a bridge measure."""
    if has_thresholds(metric):
        _bands(f, metric, lo, hi, axis=axis, labels=labels, from_zero=from_zero)
    else:
        pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1
        f.axis(f"yaxis{_ax(axis)}", range=[0 if lo >= 0 else lo - pad, hi + pad])


def _panel_title(metric: str) -> str:
    """The metric's label, with its unit unless the label already says it (or it is long)."""
    unit = unit_text(metric)
    if unit.lower() in label(metric).lower() or len(unit) > 12:
        return label(metric)
    return f"{label(metric)} ({unit})"


def metric_panels(sides: list[tuple[str, pl.DataFrame]], metrics: list[str], grain: str, kind: str = "line",
                  title: str | None = None, notes: dict[str, str] | None = None,
                  scope: str | None = None) -> go.Figure:
    """Explore's small multiples in ONE figure: a row per metric, a column per side (slice).

    One figure rather than one per metric: on a 2-core machine every extra Plotly chart on
    a page costs the browser 0.3-0.9 s before anything is drawn; extra subplots cost little.
    Side by side cells share their y range; L6 metrics carry their threshold bands.
    `notes`: metric -> a sentence drawn in its cells instead of data (e.g. support measures
    on a feature slice). `scope`: the filters and dates every side shares, as a subtitle (an
    exported PNG must say which slice it shows)."""
    notes = notes or {}
    rows, cols = len(metrics), len(sides)
    words = GRAIN_WORDS.get(grain, grain)
    names = [n for n, _ in sides if n]
    # side by side, a side is named by its value only ("Experiment group = treatment" ->
    # "treatment") in the panel titles, and the slice once in the title: at 1280 px the two
    # full panel titles ran into each other and the title was cut
    values = [n.split(" = ", 1)[1] if " = " in n else n for n in names]
    sliced = names[0].split(" = ", 1)[0] if names and " = " in names[0] else ""
    title = title or (", ".join(SHORT.get(m, m) for m in metrics) + f" by {words}"
                      + (f" — {sliced + ': ' if sliced else ''}{' vs '.join(values)}" if names else ""))
    if scope:
        title += f"<br><sup>{scope}</sup>"
    row_h, top, bottom = 330, 110, 125
    height = rows * row_h + top + bottom
    vgap = 95 / height
    f = _Fig()
    _grid(f, rows, cols, [(_panel_title(m) if cols == 1 else f"{SHORT.get(m, m)} ({unit_text(m)}) — "
                           f"{name.split(' = ', 1)[-1]}") if name else _panel_title(m)
                          for m in metrics for name, _ in sides], hgap=0.07 if cols > 1 else 0, vgap=vgap)
    drawn = False
    # a month or a quarter is labelled as one ("Apr 2026", "2026Q3"): Plotly's own date ticks
    # put "Jun 28" under the 2026Q3 point
    starts = sorted({d for _, df in sides if "period_start" in df.columns for d in df["period_start"].to_list()
                     if d is not None})
    ticks = {}
    if grain in ("month", "quarter") and starts:
        ticks = dict(tickmode="array", tickvals=[d.isoformat() for d in starts],
                     ticktext=[f"{d.year}Q{(d.month - 1) // 3 + 1}" if grain == "quarter" else d.strftime("%b %Y")
                               for d in starts])
    for r, m in enumerate(metrics):
        cells = []
        for c, (name, df) in enumerate(sides):
            n = r * cols + c + 1
            f.axis(f"xaxis{_ax(n)}", type="date", matches="x" if n > 1 else None,
                   title=dict(text=PERIOD_AXIS.get(grain, f"period start (UTC, {words})"))
                   if r == rows - 1 else None, **ticks)
            f.axis(f"yaxis{_ax(n)}", title=dict(text=axis_title(m)) if c == 0 else None)
            if m in notes:
                cells.append((n, []))
                f.annotations.append(dict(text=_wrap(notes[m], 60), x=0.5, y=0.5, xref=f"x{_ax(n)} domain",
                                          yref=f"y{_ax(n)} domain", showarrow=False,
                                          font=dict(size=14, color=STATUS_COLORS["n/a"])))
                f.axis(f"yaxis{_ax(n)}", visible=False)
                continue
            vals = _draw_series(f, [(name, df)], m, kind, axis=n, color_from=c,
                                legend=(r == 0 and cols > 1) or (m == "tta_p50_s" and c == 0))
            cells.append((n, vals))
        every = [v for _, vals in cells for v in vals]
        for n, vals in cells:
            if m in notes:
                continue
            if every:
                drawn = True
                _value_axis(f, m, min(every), max(every), axis=n, labels=n % cols == 1 or cols == 1,
                            from_zero=kind == "bar")
            else:
                f.annotations.append(dict(text="No data for this slice and period.", x=0.5, y=0.5,
                                          xref=f"x{_ax(n)} domain", yref=f"y{_ax(n)} domain", showarrow=False,
                                          font=dict(size=14, color=STATUS_COLORS["n/a"])))
    if not drawn and not notes:
        return empty_figure(title, "No data for this slice and period.")
    extra = {"barmode": "group"} if kind == "bar" else {}
    # the legend under the period axis title: the top holds the title and the panel titles
    legend = dict(orientation="h", yanchor="top", y=-(bottom - 30) / (height - top - bottom), xanchor="left", x=0.0)
    return f.build(title, height=height, margin=dict(l=80, r=30, t=top, b=bottom), showlegend=True,
                   legend=legend, **extra)


def _grid(f: _Fig, rows: int, cols: int, titles: list[str], hgap: float = 0.07, vgap: float = 0.2,
          title_size: int = 16) -> None:
    """Axis domains for a rows × cols grid (axis 1 top-left), with a title over each cell."""
    w = (1 - hgap * (cols - 1)) / cols
    h = (1 - vgap * (rows - 1)) / rows
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        x0 = c * (w + hgap)
        y1 = 1 - r * (h + vgap)
        n = i + 1
        f.axis(f"xaxis{_ax(n)}", domain=[max(0.0, x0), min(1.0, x0 + w)], anchor=f"y{_ax(n)}")
        f.axis(f"yaxis{_ax(n)}", domain=[max(0.0, y1 - h), min(1.0, y1)], anchor=f"x{_ax(n)}")
        if i < len(titles):
            f.annotations.append(dict(text=titles[i], x=x0 + w / 2, y=y1, xref="paper", yref="paper",
                                      xanchor="center", yanchor="bottom", showarrow=False,
                                      font=dict(size=title_size)))


WHAT_IF_SPAN = {"share": 10.0, "seconds": 4.0, "points": 10.0, "per 100 queries": 4.0}  # ± in display units
SLIDER_FORMAT = {"share": "%%", "seconds": " s", "points": " pts", "per 100 queries": " per 100"}  # sprintf


def what_if_slider(metric: str, current: float) -> dict:
    """The what-if slider around a metric's current value, in display units: ± a fixed span
    (± 50% for dollars) in steps of 1, 2 or 5 × a power of ten (at least span / 100), shares
    kept within 0–100%. The starting value and both ends are whole steps (74.6% in 64.6–84.6%,
    not 74.54% in 64.54–84.54%), so the browser can reach both ends (an end off the grid used
    to be rounded below the minimum and the server ignored the slider), and every number has
    the step's decimals. The page treats the slider at `value` as no change."""
    unit = _meta(metric)["unit"]
    cur = current * scale(metric)
    span = WHAT_IF_SPAN.get(unit, abs(cur) * 0.5) or 1.0
    raw = span / 100
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    step = round(step, decimals)
    k = round(cur / step)  # the start, in steps from 0
    lo_k, hi_k = math.ceil(k - span / step - 1e-9), math.floor(k + span / step + 1e-9)
    if unit == "share":
        lo_k, hi_k = max(lo_k, 0), min(hi_k, math.floor(100 / step + 1e-9))
    sign = "+" if unit == "points" else ""
    fmt = f"$%.{decimals}f" if unit == "USD" else f"%{sign}.{decimals}f{SLIDER_FORMAT.get(unit, '')}"
    return {"min": round(lo_k * step, decimals), "max": round(hi_k * step, decimals),
            "value": round(k * step, decimals), "step": step, "format": fmt}


def sparkline_svg(metric: str, values: Iterable[float | None], width: int = 240, height: int = 36) -> str | None:
    """A metric tile's weekly sparkline as SVG (no chart library to load): the weeks in order,
    a gap where a week has no value, the last week marked with a dot; the SVG's title and
    aria-label say what it shows in words (first, last, lowest and highest week). None when
    fewer than two weeks have a value. `values` are in the metric's own units (a share as a
    fraction). The drawing stretches to its box; the lines keep their width."""
    vals = [None if _bad(v) else float(v) * scale(metric) for v in values]
    known = [v for v in vals if v is not None]
    if len(known) < 2:
        return None
    lo, hi = min(known), max(known)
    pad = 4  # room for the stroke and the end dot
    step = (width - 2 * pad) / (len(vals) - 1)

    def y(v: float) -> float:  # highest week at the top; a flat series in the middle
        return height / 2 if hi == lo else pad + (hi - v) / (hi - lo) * (height - 2 * pad)

    runs, run = [], []
    for i, v in enumerate(vals):
        if v is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(f"{pad + i * step:.1f},{y(v):.1f}")
    if run:
        runs.append(run)
    last_i = max(i for i, v in enumerate(vals) if v is not None)
    words = sparkline_words(metric, vals)
    lines = "".join(f'<polyline points="{" ".join(r)}" fill="none" stroke="{SERIES[0]}" stroke-width="2" '
                    'stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke"/>'
                    if len(r) > 1 else
                    f'<circle cx="{r[0].split(",")[0]}" cy="{r[0].split(",")[1]}" r="1.5" fill="{SERIES[0]}"/>'
                    for r in runs)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'preserveAspectRatio="none" role="img" aria-label="{words}">'
            f"<title>{words}</title>{lines}"
            f'<circle cx="{pad + last_i * step:.1f}" cy="{y(vals[last_i]):.1f}" r="3" fill="{SERIES[0]}"/></svg>')


def sparkline_words(metric: str, scaled: list[float | None]) -> str:
    """The sparkline in words, from its values in display units (None: no value that week)."""
    known = [v for v in scaled if v is not None]
    shown = [fmt_value(metric, v / scale(metric)) for v in (known[0], known[-1], min(known), max(known))]
    return (f"Weekly {SHORT.get(metric, metric)}, {len(scaled)} weeks: first {shown[0]}, last {shown[1]}, "
            f"lowest {shown[2]}, highest {shown[3]}")


def sparkline_html(metric: str, values: Iterable[float | None], height: int = 36) -> str | None:
    """The sparkline as an <img> of its SVG (st.html keeps no inline SVG: its sanitizer allows
    HTML only), its words as alt text and tooltip; None when there is nothing to draw."""
    values = list(values)
    svg = sparkline_svg(metric, values, height=height)
    if svg is None:
        return None
    words = html.escape(sparkline_words(metric, [None if _bad(v) else float(v) * scale(metric) for v in values]))
    data = base64.b64encode(svg.encode()).decode()
    return (f'<img src="data:image/svg+xml;base64,{data}" alt="{words}" title="{words}" '
            f'style="display:block;width:100%;height:{height}px">')


def weekly_trends(weeks: pl.DataFrame, title: str, metrics: Iterable[str] = config.METRICS) -> go.Figure:
    """Small multiples: each L6 metric by ISO week with its threshold bands and lines."""
    metrics = list(metrics)
    if weeks is None or weeks.is_empty():
        return empty_figure(title, "No weekly data in this quarter.")
    f = _Fig()
    _grid(f, 2, 3, [axis_title(m) for m in metrics])
    starts = weeks["period_from" if "period_from" in weeks.columns else "period_start"].to_list()
    ends = (weeks["period_to"].to_list() if "period_to" in weeks.columns  # cut weeks (data_access.weeks_of)
            else [d + dt.timedelta(days=6) for d in starts])
    x = [str(d) for d in starts]
    spans = [_span(a, b) for a, b in zip(starts, ends)]
    for i, m in enumerate(metrics):
        n = i + 1
        s = scale(m)
        raw = weeks[m].to_list()
        y = [None if _bad(v) else v * s for v in raw]
        statuses = weeks[f"{m}_status"].to_list() if f"{m}_status" in weeks.columns else ["n/a"] * len(y)
        f.data.append(dict(type="scatter", x=x, y=y, mode="lines+markers", showlegend=False,
                           xaxis=f"x{_ax(n)}", yaxis=f"y{_ax(n)}", line=dict(color=SERIES[0], width=3),
                           marker=dict(size=8, symbol=[STATUS_SYMBOLS.get(t, "circle") for t in statuses]),
                           hovertext=[f"{p}: {fmt_value(m, v)} — {status_text(t)}"
                                      for p, v, t in zip(spans, raw, statuses)], hoverinfo="text"))
        vals = [v for v in y if v is not None]
        if vals:
            _bands(f, m, min(vals), max(vals), axis=n, labels=False)
        # ticks on Mondays (a quarter's first week may start mid-week: its point is the quarter's
        # first day), every fourth week: at 1280 px a panel is about 210 px wide, where two-weekly
        # labels turned on their side and ran into the titles of the row below
        f.axis(f"xaxis{_ax(n)}", type="date", tickformat="%b %d", tickangle=0, tickfont=dict(size=12),
               tick0=str(starts[0] - dt.timedelta(days=starts[0].weekday())) if starts else None,
               dtick=28 * 86_400_000, title=dict(text="week starting (UTC)") if i >= 3 else None)
    return f.build(title, height=560, margin=dict(l=60, r=20, t=100, b=60))


def _span(first: dt.date, last: dt.date) -> str:
    """'week of Jul 06' for a whole week; 'Jul 01–05 (5 days, part of the week)' for one cut by
    the quarter's edge or the data's end; 'Mar 31 (1 day, part of the week)'."""
    days = (last - first).days + 1
    if days >= 7:
        return f"week of {first:%b %d}"
    end = "" if days == 1 else "–" + (f"{last:%d}" if last.month == first.month else f"{last:%b %d}")
    return f"{first:%b %d}{end} ({days} day{'s' if days > 1 else ''}, part of the week)"


def hr_by_domain(df: pl.DataFrame, title: str) -> go.Figure:
    """HR per domain with its 95% interval against the 3% (green) and 5% (red) lines."""
    if df is None or df.is_empty() or df["hr"].drop_nulls().is_empty():
        return empty_figure(title, "No adjudicated interactions in this period.")
    m = _meta("hr")
    df = df.filter(pl.col("hr").is_not_null()).sort("hr", descending=True)
    y = [v * 100 for v in df["hr"].to_list()]
    hi = [(h - v) * 100 for h, v in zip(df["hr_ci_high"].to_list(), df["hr"].to_list())]
    lo = [(v - lw) * 100 for lw, v in zip(df["hr_ci_low"].to_list(), df["hr"].to_list())]
    statuses = df["status"].to_list()
    f = _Fig()
    f.data.append(dict(
        type="bar", x=df["domain"].to_list(), y=y, name="HR",
        marker=dict(color=[STATUS_COLORS[s] for s in statuses]),
        error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo, color="#333", thickness=1.3),
        # the value at the bar's foot: at its top the interval's whisker crossed it
        text=[f"{STATUS_ICONS[s]} {v:.1f}%" for s, v in zip(statuses, y)], textposition="inside",
        insidetextanchor="start", textfont=dict(color="white", size=15),
        hovertext=[f"{d}: HR {v:.2f}% (95% CI {v - a:.2f}–{v + b:.2f}%), {n:,} adjudicated — {status_text(s)}"
                   for d, v, a, b, n, s in zip(df["domain"], y, lo, hi, df["adjudicated"], statuses)],
        hoverinfo="text"))
    for status, t in (("green", m["green"]), ("red", m["red"])):
        f.shapes.append(_hline(t * 100, STATUS_COLORS[status], width=2))
        f.annotations.append(_label(f"{t * 100:g}% {'green bar' if status == 'green' else 'red line'}", t * 100,
                                    STATUS_COLORS[status], where="right"))
    top = max([v + b for v, b in zip(y, hi)] + [m["red"] * 100]) * 1.2
    f.axis("yaxis", title=dict(text="Hallucination rate (%)"), range=[0, top])
    f.axis("xaxis", title=dict(text="Domain"))
    return f.build(title, showlegend=False)


def threshold_ladder(values: dict | None = None, title: str = "Thresholds at a glance") -> go.Figure:
    """One strip per L6 metric: its red / amber / green ranges (labelled in words) and, when
    given, a value marked on it. values: {metric: value in native units}."""
    metrics = list(config.METRICS)
    titles = []
    for m in metrics:
        v = (values or {}).get(m)
        label, unit = _meta(m)["label"], unit_text(m)
        t = label if label.endswith(unit) else f"{label} ({unit})"  # not "… per 100 queries (per 100 queries)"
        if values is not None:
            stt = config.status(m, v)
            t += f": <b>{fmt_value(m, v)}</b> {STATUS_ICONS[stt]} {STATUS_WORDS[stt]}"
        titles.append(t)
    f = _Fig()
    n = len(metrics)
    gap = 0.085
    h = (1 - gap * (n - 1)) / n
    for i, m in enumerate(metrics, start=1):
        y1 = 1 - (i - 1) * (h + gap)
        f.axis(f"xaxis{_ax(i)}", domain=[0, 1], anchor=f"y{_ax(i)}")
        f.axis(f"yaxis{_ax(i)}", domain=[max(0.0, y1 - h), min(1.0, y1)], anchor=f"x{_ax(i)}",
               showticklabels=False, range=[-0.5, 0.5])
        f.annotations.append(dict(text=titles[i - 1], x=0, y=y1, xref="paper", yref="paper", xanchor="left",
                                  yanchor="bottom", showarrow=False, font=dict(size=15)))
        meta = _meta(m)
        s = scale(m)
        g, r = meta["green"] * s, meta["red"] * s
        v = (values or {}).get(m)
        v = None if _bad(v) else v * s
        lo, hi = min(g, r), max(g, r)
        span = hi - lo
        x0 = min(lo - span, v - span * 0.2) if v is not None else lo - span
        x1 = max(hi + span, v + span * 0.2) if v is not None else hi + span
        if meta["unit"] in ("share", "seconds", "USD", "per 100 queries"):
            x0 = max(0.0, x0)
        if meta["direction"] == "higher":
            segs = [("red", x0, r), ("amber", r, g), ("green", g, x1)]
        else:
            segs = [("green", x0, g), ("amber", g, r), ("red", r, x1)]
        for status, a, b in segs:
            f.data.append(dict(type="bar", y=[0], x=[b - a], base=[a], orientation="h", width=0.9,
                               xaxis=f"x{_ax(i)}", yaxis=f"y{_ax(i)}",
                               marker=dict(color=BAND_COLORS[status].replace("0.10", "0.35"),
                                           line=dict(color=STATUS_COLORS[status], width=1)),
                               showlegend=False, text=[STATUS_WORDS[status]], textposition="inside",
                               insidetextanchor="middle", textfont=dict(color=STATUS_COLORS[status], size=14),
                               hoverinfo="skip"))
        if v is not None:
            st_ = config.status(m, v / s)
            f.data.append(dict(type="scatter", x=[v], y=[0], mode="markers", showlegend=False,
                               xaxis=f"x{_ax(i)}", yaxis=f"y{_ax(i)}",
                               marker=dict(symbol="line-ns", size=34, line=dict(width=4, color="#111")),
                               hoverinfo="text", hovertext=[f"{fmt_value(m, v / s)} — {status_text(st_)}"]))
        f.axis(f"xaxis{_ax(i)}", range=[x0, x1])
    return f.build(title, height=110 * n + 110, showlegend=False, barmode="overlay")


# --------------------------------------------------------------------------------------
# bridge charts
# --------------------------------------------------------------------------------------
# a chain's QoQ change in two parts (bridge.waterfall): what its AI metric's own move was worth,
# and the rest (volume, mix and conversion rates); a chain without that split keeps its whole change
METRIC_PART, OTHER_PART, WHOLE_PART = "AI-metric move", "volume, mix, rates", "whole change"
# under a bar about 60 px wide at 1280 px: at most 7 characters a line
_PART_TICK = {METRIC_PART: "metric<br>move", OTHER_PART: "volume,<br>mix,<br>rates", WHOLE_PART: "whole<br>change"}


def waterfall_bars(steps: list[dict]) -> list[dict]:
    """The waterfall's relative bars, decomposed along each chain: per chain the part that
    follows its AI metric's own move (`via_ai_metric`) and the rest of its change (volume, mix
    and conversion rates: `other`), side by side, so a chain's metric is never credited with
    usage growth and opposite moves in two chains are not netted into one bar. A chain
    without that split keeps its whole change, with its interval.
    [{"chain", "part", "usd", "ci_low", "ci_high"}]; the bars add up to the chains' change."""
    bars = []
    for s in steps:
        if s.get("via_ai_metric") is not None and s.get("other") is not None:
            bars.append({"chain": s["label"], "part": METRIC_PART, "usd": s["via_ai_metric"],
                         "ci_low": None, "ci_high": None})
            bars.append({"chain": s["label"], "part": OTHER_PART, "usd": s["other"],
                         "ci_low": None, "ci_high": None})
        else:
            bars.append({"chain": s["label"], "part": WHOLE_PART, "usd": s.get("usd"),
                         "ci_low": s.get("ci_low"), "ci_high": s.get("ci_high")})
    return bars


def waterfall(steps: list[dict], title: str, start: dict | None = None, end: dict | None = None) -> go.Figure:
    """QoQ dollar change decomposed along each chain (report.waterfall_steps): under each
    chain's name, a bar for what its AI metric's own move was worth and one for its volume,
    mix and rates (waterfall_bars); then the net change. start/end: {"label", "usd"} totals
    (optional). The x axis is two-level (chain, part)."""
    if not steps:
        return empty_figure(title, "No quarter-over-quarter change to decompose.")
    groups, parts, y, measure, text, hover = [], [], [], [], [], []
    if start:
        groups.append(_wrap(start["label"], 14)); parts.append("start"); y.append(start["usd"])
        measure.append("absolute"); text.append(fmt_usd(start["usd"])); hover.append(fmt_usd(start["usd"]))
    bars = waterfall_bars(steps)
    for b in bars:
        groups.append(_wrap(b["chain"], 14)); parts.append(_PART_TICK[b["part"]])
        y.append(b["usd"] or 0.0); measure.append("relative")
        ci = ""
        if not _bad(b.get("ci_low")) and not _bad(b.get("ci_high")):
            ci = f"<br>[{fmt_usd_range(b['ci_low'], b['ci_high'], sep=', ')}]"
        text.append(f"{fmt_usd(b['usd'], True)}{ci}")  # the sign says the direction (and the colour)
        hover.append(f"{b['chain']}: {b['part']} {fmt_usd(b['usd'], True)}")
    total = end["usd"] if end else sum((b["usd"] or 0.0) for b in bars) + (start["usd"] if start else 0)
    groups.append("All chains"); parts.append(_wrap(end["label"] if end else "net change", 7))
    y.append(end["usd"] if end else 0.0); measure.append("absolute" if end else "total")
    text.append(fmt_usd(total, signed=not end))
    hover.append(f"All chains: {'end' if end else 'net change'} {fmt_usd(total, signed=not end)}")
    f = _Fig()
    f.data.append(dict(
        type="waterfall", x=[groups, parts], y=y, measure=measure, text=text, textposition="outside",
        cliponaxis=False, textfont=dict(size=13), constraintext="none", hovertext=hover, hoverinfo="text",
        increasing=dict(marker=dict(color=STATUS_COLORS["green"])),
        decreasing=dict(marker=dict(color=STATUS_COLORS["red"])),
        totals=dict(marker=dict(color=SERIES[0])), connector=dict(line=dict(color="#9aa5b1", dash="dot"))))
    # running totals give the axis range (labels sit outside the bars)
    run, levels = 0.0, [0.0]
    for v, mtype in zip(y, measure):
        run = v if mtype == "absolute" else (run if mtype == "total" else run + (v or 0))
        levels.append(run)
    lo_, hi_ = min(levels), max(levels)
    pad = (hi_ - lo_) * 0.3 or abs(hi_) * 0.3 or 1
    f.axis("yaxis", title=dict(text="Change in dollars (USD)"), tickformat="$,.0f",  # "−$5,000": sign before the currency, no SI prefixes ($500m, $1.6G)
           range=[lo_ - pad, hi_ + pad])
    # two-level category labels, not rotated: at 1280 px (a projector) eleven bars get about 70 px
    # each, so a part's name on lines of ~10 characters and a chain's on ~14 under its two bars
    f.axis("xaxis", title=dict(text="Each chain's change: its AI metric's own move, then volume, mix and rates"),
           tickangle=0, tickfont=dict(size=13))
    return f.build(title, height=560, showlegend=False, margin=dict(l=90, r=30, t=100, b=150))


def fmt_signed1(v: float) -> str:
    """One decimal with its sign and a minus sign ("+2.2", "−1.0"); "0.0" for what rounds to 0."""
    return "0.0" if round(float(v), 1) == 0 else f"{float(v):+.1f}".replace("-", "−")


def fmt_num(v: Any, unit: str = "", signed: bool = False) -> str:
    """A number as the chain diagram and the bridge tables print it: whole with thousands
    separators from 100 ("3,286", "−54,131,009"), two decimals from 1 ("61.51"), three
    significant digits below ("−0.0191", "0.0980", "0.0000123": never e-notation), the
    range picked by the rounded value (0.9996 prints "1.00"); a minus sign, not a hyphen;
    "0" for zero (and −0.0); "+" before a positive number with `signed`; "n/a" for none."""
    if _bad(v) or math.isinf(v):
        return "n/a"
    if unit in ("USD", "$", "usd"):
        return fmt_usd(v, signed=True)
    v = float(v) + 0.0  # -0.0 -> 0.0
    a = abs(v)
    if a == 0:
        s = "0"
    elif a >= 99.995:
        s = f"{v:,.0f}"
    elif a >= 0.9995:
        s = f"{v:.2f}"
    elif a >= 0.001:
        s = f"{v:#.3g}"
    else:
        s = f"{v:.{2 - math.floor(math.log10(a))}f}"
    if signed and v > 0:
        s = "+" + s
    return f"{s.replace('-', '−')} {unit}".strip()


# an AI metric's unit step for its edge (a slope "per share" reads per point; CPVO per $0.001)
_STEP = {"share": (0.01, "+1 pt"), "USD": (0.001, "+$0.001"), "seconds": (1.0, "+1 s"),
         "points": (1.0, "+1 pt"), "per 100 queries": (1.0, "+1 per 100")}


def step_for_display(step: dict) -> dict:
    """An edge out of an AI metric as people say it: per point of TCR rather than per share
    ("−0.0633 contacts per 1,000 AI interactions per +1 pt of TCR", not "−6.33 (contacts per
    1,000 AI interactions) per share"); other edges as they are. Estimate and interval are
    scaled alike; the CSV keeps the model's own units."""
    frm = step.get("from")
    if frm not in config.METRICS or not step.get("unit"):
        return step
    factor, words = _STEP.get(_meta(frm)["unit"], (1.0, "+1"))
    unit = str(step["unit"])
    if unit.startswith("(") and ")" in unit:  # "(contacts per 1,000 AI interactions) per share"
        inner = unit[1:unit.index(")")]
    elif " per (" in unit:  # "valid outputs per (USD per valid output)"
        inner = unit.split(" per (")[0]
    else:  # "users per point"
        inner = unit.rsplit(" per ", 1)[0]

    def scaled(v):
        return None if _bad(v) else v * factor
    return {**step, "estimate": scaled(step.get("estimate")), "ci_low": scaled(step.get("ci_low")),
            "ci_high": scaled(step.get("ci_high")), "unit": f"{inner} per {words} of {SHORT.get(frm, frm)}"}


def fmt_interval(step: dict) -> str:
    """An edge's 95% interval as the diagram and the steps table print it: "[−11.92, −0.751]",
    or "exact (no sampling error)" for a count, an identity or an assumption."""
    lo, hi = step.get("ci_low"), step.get("ci_high")
    if lo is not None and lo == hi:
        return "exact (no sampling error)"
    return f"[{fmt_num(lo)}, {fmt_num(hi)}]"


def _wrap(text: str, width: int) -> str:
    """Wrap plain words into lines of about `width` characters joined with <br>."""
    lines, line = [], ""
    for w in str(text).replace("_", " ").split():
        if line and len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "<br>".join(lines)


_FLOW_PX_PER_UNIT = 700  # a flow chart's x axis spans 1.3 units over ~900 px (a page column, the PDF is wider)


def _box_half_width(text: str, font_px: int, pad_px: int = 8) -> float:
    """Half the width of an annotation box, in x units, from its longest line (tags
    removed; ~0.55 em per character: bold type and digits)."""
    lines = [re.sub(r"<[^>]+>", "", line) for line in text.split("<br>")]
    chars = max((len(line) for line in lines), default=0)
    return (chars * 0.55 * font_px / 2 + pad_px + 2) / _FLOW_PX_PER_UNIT


def _flow(f: "_Fig", xs: list[float], halves: list[float], y: float) -> list[float]:
    """Arrows between consecutive boxes, from edge to edge (never into a box's text);
    returns the x range that holds every box."""
    for i in range(1, len(xs)):
        start, end = xs[i - 1] + halves[i - 1] + 0.01, xs[i] - halves[i] - 0.01
        if end - start < 0.02:  # boxes too wide to leave a gap: a short arrow between centers
            start, end = (xs[i - 1] + xs[i]) / 2 - 0.01, (xs[i - 1] + xs[i]) / 2 + 0.01
        f.annotations.append(dict(x=end, y=y, ax=start, ay=y, xref="x", yref="y", axref="x", ayref="y",
                                  showarrow=True, arrowhead=3, arrowsize=1.4, arrowwidth=2.5,
                                  arrowcolor="#52606d", text=""))
    return [min(-0.15, xs[0] - halves[0] - 0.02), max(1.15, xs[-1] + halves[-1] + 0.02)]


def against_holdout(chain: dict) -> bool:
    """Whether the chain's dollars are measured against the holdout (causal) rather than on
    the treatment population alone (a P&L line the holdout, never offered the AI, has none of)."""
    return str(chain.get("impact_method") or "").startswith("causal")


def fixed_assumptions(chain: dict) -> list[str]:
    """The business assumptions a chain's measured dollars rest on. The measured interval
    is the P&L node's sampling interval (e.g. the hours' interval times the cost per hour):
    every assumption is held exact in it, even one given a plausible range (low/high), which
    widens only the edge intervals behind the implied and what-if figures."""
    return sorted((chain.get("assumptions") or {}).keys())


def pnl_word(chain: dict) -> str:
    """What a chain's signed P&L impact means, in words: a gain, a cost, or no measurable
    effect when its 95% interval spans zero (P&L sign: + is good for the P&L)."""
    usd, lo, hi = chain.get("usd_impact"), chain.get("usd_ci_low"), chain.get("usd_ci_high")
    if _bad(usd):
        return "n/a"
    if not _bad(lo) and not _bad(hi) and lo <= 0 <= hi:
        return "no measurable effect"
    return "gain" if usd > 0 else "cost" if usd < 0 else "none"


def _box_interval(lo, hi) -> str:
    """A 95% interval short enough for a diagram's box: "[−$0.5k, +$15.0k]", or its
    half-width ("±$73") when both ends print alike at their scale."""
    if _bad(lo) or _bad(hi):
        return "[n/a]"
    if fmt_usd(lo, True, scale_of=(lo, hi)) == fmt_usd(hi, True, scale_of=(lo, hi)):
        return f"±{fmt_usd((hi - lo) / 2)}"
    return f"[{fmt_usd_range(lo, hi, sep=', ')}]"


def chain_diagram(chain: dict, title: str | None = None) -> go.Figure:
    """AI metric → behavior → ops → P&L: one box per node, each edge labelled with its
    estimate, 95% interval and method (causal / observational)."""
    steps = chain.get("steps") or []
    nodes = [steps[0]["from"]] + [s["to"] for s in steps] if steps else [chain.get("ai_metric", "?")]
    info = {nd.get("node"): nd for nd in chain.get("nodes") or []}
    n = len(nodes)
    f = _Fig()
    xs = [i / max(n - 1, 1) for i in range(n)]
    halves: list[float] = []
    for i, (node, x) in enumerate(zip(nodes, xs)):
        last = i == n - 1
        nd = info.get(node, {})
        text = f"<b>{_wrap(nd.get('label') or node, 18)}</b>"
        v = nd.get("value")
        if not _bad(v):
            if node in config.METRICS:
                text += f"<br>{fmt_value(node, v)}"
            elif not last:
                value_line = f"{fmt_num(v)} {nd.get('unit') or ''}"
                text += f"<br>{_wrap(value_line, 24)}"
                cf = nd.get("counterfactual")
                if not _bad(cf) and cf != 0:  # the level beside its holdout value: the P&L box is their gap
                    text += f"<br><span style='font-size:13px'>holdout, scaled: {fmt_num(cf)}</span>"
        if last and not _bad(chain.get("usd_impact")):
            # the P&L box holds the quarter's impact, not a level like the boxes before it:
            # its line says against what, and the interval says when it is sampling only
            text += (f"<br>P&L impact<br>{'vs holdout' if against_holdout(chain) else 'treatment only'}"
                     f"<br><b>{fmt_usd(chain['usd_impact'], True)}</b><br>({pnl_word(chain)})"
                     f"<br>{_box_interval(chain.get('usd_ci_low'), chain.get('usd_ci_high'))}"
                     + ("<br><span style='font-size:12px'>sampling only</span>" if fixed_assumptions(chain) else ""))
        halves.append(_box_half_width(text, 15))
        # the P&L box in the colour of its reading (gain green, cost red, no measurable effect
        # grey), the word inside saying it too: a cost in green read as good news
        fill, edge = PNL_BOX.get(pnl_word(chain), PNL_BOX["n/a"]) if last else ("#eef3fb", "#1f5fa8")
        f.annotations.append(dict(x=x, y=0.45, xref="x", yref="y", text=text, showarrow=False,
                                  font=dict(size=15), align="center", bgcolor=fill, bordercolor=edge, borderwidth=2,
                                  borderpad=8))
    x_range = _flow(f, xs, halves, 0.45)
    for i, s in enumerate(steps):
        x0, x1 = xs[i], xs[i + 1]
        how = edge_kind(s)
        s = step_for_display(s)
        interval = fmt_interval(s)
        interval = interval if interval.startswith("exact") else f"95% CI {interval}"
        label = (f"<b>{fmt_num(s.get('estimate'))}</b> <i>{how}</i><br>{interval}<br>"
                 f"<span style='font-size:11px'>{_wrap(s.get('unit', ''), 30)}</span>")
        f.annotations.append(dict(x=(x0 + x1) / 2, y=0.9, xref="x", yref="y", text=label, showarrow=False,
                                  font=dict(size=13, color="#323f4b"), align="center",
                                  # wrapped: one long line ran past the chart on both sides
                                  hovertext=_wrap(s["basis"], 60) if s.get("basis") else None))
    f.axis("xaxis", visible=False, range=x_range)
    f.axis("yaxis", visible=False, range=[0.0, 1.12])
    return f.build(title or f"{chain.get('name', 'Chain')}", height=340, showlegend=False,
                   margin=dict(l=20, r=20, t=70, b=20))


def what_if_chart(res: dict, title: str) -> go.Figure:
    """The what-if as a flow: each node of the chain with its current and new value and the
    change, ending in the dollars moved with their 95% interval."""
    nodes = res.get("nodes") or []
    if not nodes:
        return empty_figure(title, "No what-if result.")
    n = len(nodes)
    f = _Fig()
    xs = [i / max(n - 1, 1) for i in range(n)]
    halves: list[float] = []
    metric = res.get("ai_metric")
    for i, (nd, x) in enumerate(zip(nodes, xs)):
        last = i == n - 1
        unit = nd.get("unit") or ""
        cur, new, ch = nd.get("current"), nd.get("new"), nd.get("change")
        if i == 0 and metric in config.METRICS:
            body = f"{fmt_value(metric, cur)} → {fmt_value(metric, new)}"
            delta = fmt_change(metric, None if _bad(ch) else ch * scale(metric)) or "n/a"
        elif last:  # the line's own change, then what it does to the P&L (a cost that falls is a gain)
            body = f"{fmt_usd(cur)} → {fmt_usd(new)}"
            level = None if _bad(cur) or _bad(new) else new - cur
            delta = (f"{fmt_usd(level, True)}</b><br><b>P&L {fmt_usd(res.get('usd_change'), True)}"
                     if level is not None else f"{fmt_usd(res.get('usd_change'), True)}")
        else:
            if not _bad(ch) and not _bad(cur) and abs(ch) <= 1e-9 * max(1.0, abs(cur)):
                ch = 0.0  # float noise of an unmoved node (e.g. -1.7e-10), not a change
            body = f"{fmt_num(cur)} → {fmt_num(new)}"
            delta = fmt_num(ch, signed=True)
        text = (f"<b>{_wrap(nd.get('label') or nd.get('node', '?'), 18)}</b><br>{body}<br>"
                f"<b>Δ {delta}</b>")
        if last and not _bad(res.get("usd_ci_low")) and res.get("usd_change"):  # not at rest
            lo, hi = res.get("usd_ci_low"), res.get("usd_ci_high")
            text += ("<br>exact (no sampling error)" if hi - lo < 0.5
                     else f"<br>95% CI [{fmt_usd_range(lo, hi, sep=', ')}]")
        elif not last and i > 0:
            text += f"<br><span style='font-size:11px'>{_wrap(unit, 26)}</span>"
        good = None
        if last and not _bad(res.get("usd_change")) and res.get("usd_change") != 0:
            good = res["usd_change"] > 0
        halves.append(_box_half_width(text, 14))
        f.annotations.append(dict(x=x, y=0.5, xref="x", yref="y", text=text, showarrow=False, font=dict(size=14),
                                  align="center", bgcolor="#e8f5ec" if good else ("#fdecea" if good is False else "#eef3fb"),
                                  bordercolor=STATUS_COLORS["green"] if good else (STATUS_COLORS["red"] if good is False else "#1f5fa8"),
                                  borderwidth=2, borderpad=8))
    f.axis("xaxis", visible=False, range=_flow(f, xs, halves, 0.5))
    f.axis("yaxis", visible=False, range=[0.0, 1.0])
    return f.build(title, height=280, showlegend=False, margin=dict(l=20, r=20, t=70, b=20))


# --------------------------------------------------------------------------------------
# data quality charts
# --------------------------------------------------------------------------------------
def gate_history(df: pl.DataFrame, title: str = "Gate results per run") -> go.Figure:
    if df is None or df.is_empty():
        return empty_figure(title, "No gate results recorded yet.")
    agg = (df.group_by("run_id").agg(pl.col("evaluated_at").min(), pl.col("passed").sum(),
                                     pl.col("failed_warning").sum(), pl.col("failed_critical").sum())
           .sort("evaluated_at"))
    x = [str(r)[:15] for r in agg["run_id"].to_list()]
    f = _Fig()
    f.data.append(dict(type="bar", x=x, y=agg["passed"].to_list(), name="✔ passed",
                       marker=dict(color=STATUS_COLORS["green"])))
    f.data.append(dict(type="bar", x=x, y=agg["failed_warning"].to_list(), name="⚠ failed (warning)",
                       marker=dict(color=STATUS_COLORS["amber"], pattern=dict(shape="/"))))
    f.data.append(dict(type="bar", x=x, y=agg["failed_critical"].to_list(), name="✖ failed (critical)",
                       marker=dict(color=STATUS_COLORS["red"], pattern=dict(shape="x"))))
    f.axis("xaxis", title=dict(text="Run (id, UTC start)"), type="category")
    f.axis("yaxis", title=dict(text="Expectations (count)"))
    return f.build(title, barmode="stack")


def quarantine_bars(df: pl.DataFrame, title: str) -> go.Figure:
    if df is None or df.is_empty():
        return empty_figure(title, "No rows were quarantined in this run.", height=260)
    df = df.sort("n")
    labels = [f"{t} · {r}" + (f" ({c})" if c else "") for t, r, c in
              zip(df["table_name"], df["reason"], df["column_name"])]
    f = _Fig()
    f.data.append(dict(type="bar", y=labels, x=df["n"].to_list(), orientation="h",
                       marker=dict(color=STATUS_COLORS["amber"]), text=[f"{v:,}" for v in df["n"].to_list()],
                       textposition="outside", cliponaxis=False))
    small = int(df["n"].max()) < 10  # whole rows: no 0.5 ticks on a count axis
    f.axis("xaxis", title=dict(text="Quarantined rows (count)"), rangemode="tozero",
           **(dict(tick0=0, dtick=1) if small else dict(tickformat=",d")))
    # the bars name themselves; a vertical axis title would run past a one- or two-bar plot
    # into the chart title, so the key goes under the title instead
    f.axis("yaxis", automargin=True)
    return f.build(f"{title}<br><sup>each bar: table · reason (column at fault)</sup>",
                   height=max(300, 110 + 45 * df.height), showlegend=False, margin=dict(l=70, r=40, t=95, b=70))


# --------------------------------------------------------------------------------------
# audit charts (shapes follow pipelines/audit.py findings; tolerant of missing keys)
# --------------------------------------------------------------------------------------
def psi_bars(psi: list[dict], title: str = "Input drift: population stability index") -> go.Figure:
    """PSI per input against the 0.1 (watch) and 0.25 (act) bands."""
    rows = [p for p in psi or [] if not _bad(p.get("psi"))]
    if not rows:
        return empty_figure(title, "No drift measurements in this audit.")
    names = [str(p.get("input") or p.get("name") or p.get("feature") or "?") for p in rows]
    vals = [p["psi"] for p in rows]
    stat = ["red" if v >= 0.25 else ("amber" if v >= 0.1 else "green") for v in vals]
    top = max(0.4, max(vals) * 1.3)
    f = _Fig()
    f.data.append(dict(type="bar", x=names, y=vals, marker=dict(color=[STATUS_COLORS[s] for s in stat]),
                       text=[f"{STATUS_ICONS[s]} {v:.3f}" for s, v in zip(stat, vals)], textposition="outside",
                       cliponaxis=False))
    f.shapes += [_hrect(0, 0.1, BAND_COLORS["green"]), _hrect(0.1, 0.25, BAND_COLORS["amber"]),
                 _hrect(0.25, top, BAND_COLORS["red"]), _hline(0.1, STATUS_COLORS["amber"]),
                 _hline(0.25, STATUS_COLORS["red"])]
    f.annotations += [_label("0.10 watch", 0.1, STATUS_COLORS["amber"]),
                      _label("0.25 significant drift", 0.25, STATUS_COLORS["red"])]
    f.axis("yaxis", title=dict(text="PSI (unitless)"), range=[0, top])
    f.axis("xaxis", title=dict(text="Input"))
    return f.build(title, showlegend=False)


def reliability_diagram(bins: list[dict], ece: float | None = None,
                        title: str = "Calibration: confidence vs tier-2 accuracy") -> go.Figure:
    rows = [b for b in bins or [] if not _bad(b.get("mean_confidence")) and not _bad(b.get("accuracy"))]
    if not rows:
        return empty_figure(title, "No calibration bins in this audit.")
    x = [b["mean_confidence"] * 100 for b in rows]
    y = [b["accuracy"] * 100 for b in rows]
    n = [b.get("n", 0) or 0 for b in rows]
    f = _Fig()
    f.data.append(dict(type="scatter", x=[0, 100], y=[0, 100], mode="lines", name="perfectly calibrated",
                       line=dict(color="#9aa5b1", dash="dash")))
    f.data.append(dict(type="scatter", x=x, y=y, mode="lines+markers", name="observed",
                       line=dict(color=SERIES[0], width=3),
                       marker=dict(size=[max(8, min(26, 6 + math.log1p(v) * 2)) for v in n]),
                       hovertext=[f"confidence {a:.0f}% → accurate {b:.0f}% (n={c:,})" for a, b, c in zip(x, y, n)],
                       hoverinfo="text"))
    if ece is not None and not _bad(ece):
        title = f"{title} (ECE {ece:.3f})"
    f.axis("xaxis", title=dict(text="Mean stated confidence (%)"), range=[0, 100])
    f.axis("yaxis", title=dict(text="Share not hallucinated, tier 2 (%)"), range=[0, 100])
    return f.build(title)


COUNTER_NAMES = {"requery_rate": "re-queries", "completed_escalation_rate": "escalations after completion",
                 "hr_coverage": "adjudication coverage"}  # the audit's counter-metrics, short


def gaming_pairs(pairs: list[dict], title: str = "Anti-gaming: each primary metric beside its counter-metric") -> go.Figure:
    """Change of each primary metric and its counter-metric (relative %, against the
    reference window), every pair of the audit: a counter-metric with no relative change to
    show (zero in the reference window) keeps its place, at 0 and labelled with why."""
    rows = [p for p in pairs or [] if not _bad(p.get("primary_change"))]
    if not rows:
        return empty_figure(title, "No gaming checks in this audit.")
    def name(m) -> str:  # "TCR", "re-queries within 5 minutes …": never a column name
        return SHORT.get(m) or str(COUNTER_NAMES.get(m, m)).replace("_", " ")

    labels = [_wrap(f"{name(p.get('primary', '?'))} vs {name(p.get('counter', '?'))}", 18)
              + ("<br>⚠ flagged" if p.get("flagged") or p.get("flag") else "<br>✔ ok") for p in rows]

    def why_none(p) -> str:
        if p.get("counter_reference") == 0 and p.get("counter_audit") == 0:
            return "0 in both windows"
        return "n/a: 0 in the reference" if p.get("counter_reference") == 0 else "n/a"

    def pct(v: float) -> str:  # -0.04% stays -0.04%, not -0.0%
        return f"{v:+.1f}%" if abs(v) >= 0.05 or v == 0 else f"{v:+.2g}%"

    text = dict(textposition="outside", cliponaxis=False, constraintext="none", textfont=dict(size=15))
    f = _Fig()
    f.data.append(dict(type="bar", x=labels, y=[p["primary_change"] for p in rows], name="primary metric change",
                       marker=dict(color=SERIES[0]), text=[pct(p["primary_change"]) for p in rows], **text))
    f.data.append(dict(type="bar", x=labels, y=[0.0 if _bad(p.get("counter_change")) else p["counter_change"]
                                                for p in rows],
                       name="counter-metric change", marker=dict(color=SERIES[1], pattern=dict(shape="/")),
                       text=[why_none(p) if _bad(p.get("counter_change")) else pct(p["counter_change"])
                             for p in rows], **text))
    vals = [v for p in rows for v in (p["primary_change"], p.get("counter_change")) if not _bad(v)]
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    pad = (hi - lo) * 0.2 or 1.0
    f.axis("xaxis", title=dict(text="Metric pair (primary vs counter-metric)"))
    f.axis("yaxis", title=dict(text="Change vs reference (%)"), range=[lo - pad, hi + pad], zeroline=True)
    return f.build(title, barmode="group", height=480, margin=dict(l=80, r=30, t=110, b=110))


def steady_step(finding: dict) -> dict | None:
    """An audit decay finding's level shift when it reads as a one-off step toward red with
    steady weeks since (audit.level_shift): the line fitted across it would read it as a
    trend. The decay panels and the QBR's audit bullet say the step instead; else None."""
    sh = (finding or {}).get("level_shift") or {}
    return sh if sh.get("toward_red") and sh.get("since_trend") == "flat" else None


def decay_small_multiples(decay: dict, weekly: pl.DataFrame | None = None,
                          title: str = "Decay: each L6 metric by week, trend and 95% interval") -> go.Figure:
    """One panel per metric: the audit window's weekly values, the fitted trend line, the
    band its slope's 95% interval spans, and the red line. decay: {metric: finding}; the
    weekly values come from the finding's `weeks` or else from `weekly` (the L6 table by
    week over the audit window)."""
    metrics = [m for m in config.METRICS if isinstance((decay or {}).get(m), dict)]
    if not metrics:
        return empty_figure(title, "No decay estimates in this audit.")
    f = _Fig()
    titles = []
    for m in metrics:
        d = decay[m]
        slope = d.get("slope_per_week")
        s = scale(m)
        t = axis_title(m)
        sh = d.get("level_shift") or {}
        small = '<br><span style="font-size:12px">'  # two short lines: a third of 1280 px each
        flag = "⚠ flagged" if d.get("flagged") else ""
        if steady_step(d) and not _bad(sh.get("step")):
            # a one-off step, steady since: the line's slope and weeks to red would read it as a
            # trend (they stay in the audit record, the CSV and the CLI)
            t += (f"{small}step {fmt_slope(m, sh['step'])}, week of {dt.date.fromisoformat(sh['week_start']):%b %d}"
                  f"<br>steady at {fmt_value(m, sh['after'])} ({config.status(m, sh['after'])})"
                  + (f" · {flag}" if flag else "") + "</span>")
        elif not _bad(slope):
            wk = d.get("weeks_to_red")
            t += (f"{small}{fmt_slope(m, slope)}/wk" + (" · already red" if wk == 0 else "" if _bad(wk) else
                  " · red within 1 wk" if wk < 1 else f" · red in {wk:.0f} wk"))  # not "red in 0 wk"
            second = []
            if sh.get("week_start"):  # a step, and a trend since (or too few weeks to tell)
                since = {"better": ", improving since", "worse": ", worsening since"}.get(sh.get("since_trend"), "")
                second.append(f"step, week of {dt.date.fromisoformat(sh['week_start']):%b %d}{since}")
            if flag:
                second.append(flag)
            t += ("<br>" + " · ".join(second) if second else "") + "</span>"
        titles.append(t)
    _grid(f, 2, 3, titles, vgap=0.28)
    for i, m in enumerate(metrics):
        n = i + 1
        d = decay[m]
        s = scale(m)
        weeks = d.get("weeks") or []
        if not weeks and weekly is not None and not weekly.is_empty():
            weeks = [{"period_start": p, "value": v} for p, v in zip(weekly["period_start"].to_list(),
                                                                      weekly[m].to_list())]
        x = [str(w.get("period_start"))[:10] for w in weeks]
        y = [None if _bad(w.get("value")) else w["value"] * s for w in weeks]
        f.data.append(dict(type="scatter", x=x, y=y, mode="markers", showlegend=False, xaxis=f"x{_ax(n)}",
                           yaxis=f"y{_ax(n)}", marker=dict(size=9, color=SERIES[0]), hoverinfo="x+y"))
        slope, b0 = d.get("slope_per_week"), d.get("intercept")
        vals = [v for v in y if v is not None]
        if not _bad(slope) and not _bad(b0) and x:
            import datetime as _dt
            t0 = _dt.date.fromisoformat(x[0][:10])
            ts = [(_dt.date.fromisoformat(v[:10]) - t0).days / 7 for v in x]
            fit = [(b0 + slope * t) * s for t in ts]
            lo = [(b0 + (d.get("ci_low") if not _bad(d.get("ci_low")) else slope) * t) * s for t in ts]
            hi = [(b0 + (d.get("ci_high") if not _bad(d.get("ci_high")) else slope) * t) * s for t in ts]
            band_lo = [min(a, b) for a, b in zip(lo, hi)]
            band_hi = [max(a, b) for a, b in zip(lo, hi)]
            f.data.append(dict(type="scatter", mode="lines", x=x + x[::-1], y=band_hi + band_lo[::-1], fill="toself",
                               fillcolor="rgba(31,95,168,0.15)", line=dict(width=0), hoverinfo="skip",
                               showlegend=False, xaxis=f"x{_ax(n)}", yaxis=f"y{_ax(n)}"))
            f.data.append(dict(type="scatter", x=x, y=fit, mode="lines", showlegend=False, xaxis=f"x{_ax(n)}",
                               yaxis=f"y{_ax(n)}", line=dict(color="#111", dash="dash", width=2), hoverinfo="skip"))
            vals += fit + band_lo + band_hi
        sh = d.get("level_shift")
        if sh and sh.get("week_start"):  # where the step is: a dotted line halfway before its first week
            at = (dt.datetime.fromisoformat(sh["week_start"]) - dt.timedelta(hours=84)).isoformat()
            f.shapes.append(dict(type="line", xref=f"x{_ax(n)}", yref=f"y{_ax(n)} domain", x0=at, x1=at, y0=0, y1=1,
                                 line=dict(color="#555", dash="dot", width=1.5)))
        red = _meta(m)["red"] * s
        f.shapes.append(_hline(red, STATUS_COLORS["red"], axis=n))
        f.annotations.append(_label(f"red {OPS[_meta(m)['red_op']]} {_fmt_threshold(m, red / s)}", red,
                                    STATUS_COLORS["red"], axis=n, above=_meta(m)["direction"] == "lower"))
        vals.append(red)
        if vals:
            pad = (max(vals) - min(vals)) * 0.15 or 1
            f.axis(f"yaxis{_ax(n)}", range=[min(vals) - pad, max(vals) + pad])
        # ticks on the weeks' Mondays (the audit window is whole ISO weeks), every other week
        f.axis(f"xaxis{_ax(n)}", type="date", tickformat="%b %d", tick0=x[0] if x else None,
               dtick=14 * 86_400_000, title=dict(text="week starting (UTC)") if i >= 3 else None)
    return f.build(title, height=680, margin=dict(l=60, r=20, t=150, b=60))


def alignment_scatter(alignment: dict, title: str | None = None) -> go.Figure:
    """The north star against the behavior it should drive, week by week: the reference
    window and the audit window, each with its fitted slope."""
    title = title or "Alignment: does the north star still move the behavior it should drive?"
    if not alignment:
        return empty_figure(title, "No alignment check in this audit.")
    ns = alignment.get("north_star", "north star")
    s = scale(ns) if ns in config.METRICS else 1
    f = _Fig()
    for i, (key, name) in enumerate((("reference", "reference window"), ("audit", "audit window"))):
        part = alignment.get(key) or {}
        pts = part.get("points") or []
        if not pts:
            continue
        x = [None if _bad(p.get("north_star")) else p["north_star"] * s for p in pts]
        y = [p.get("behavior") for p in pts]
        slope = part.get("slope")
        per = ("point" if _meta(ns)["unit"] == "share" else unit_text(ns)) if ns in config.METRICS else "unit"
        label = f"{name}" + (f" (slope {slope / s:+.3g} per {per})" if not _bad(slope) else "")  # as the note says
        f.data.append(dict(type="scatter", x=x, y=y, mode="markers", name=label,
                           marker=dict(size=11, color=SERIES[i], symbol="circle" if i else "diamond"),
                           hovertext=[f"week of {p.get('period_start')}" for p in pts], hoverinfo="text+x+y"))
        xs = [v for v in x if v is not None]
        ys = [v for v in y if v is not None]
        if not _bad(slope) and xs and ys:
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            x0, x1 = min(xs), max(xs)
            f.data.append(dict(type="scatter", x=[x0, x1], y=[my + slope / s * (x0 - mx), my + slope / s * (x1 - mx)],
                               mode="lines", showlegend=False, line=dict(color=SERIES[i], dash="dash", width=2),
                               hoverinfo="skip"))
    if not f.data:
        return empty_figure(title, "No weekly points for the alignment check.")
    f.axis("xaxis", title=dict(text=axis_title(ns) if ns in config.METRICS else str(ns)))
    # a long behavior ("support contacts per 1,000 AI interactions") on two lines: on one it
    # ran up the side into the chart's title
    f.axis("yaxis", title=dict(text=_wrap(str(alignment.get("behavior", "behavior")), 24)))
    # the legend (long: each window's slope) under the plot: above it, at 1280 px, it sat on the title
    return f.build(title, height=520, margin=dict(l=90, r=30, t=80, b=140),
                   legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0))
