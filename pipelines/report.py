"""The pages' tables and words, and the QBR export: summary bullets written from the numbers
by templates (no language model), tables as an exec reads them (with their full-precision
CSV twins), chart images (kaleido, Debian's chromium) and the one-click PDF (fpdf2)."""
from __future__ import annotations

import atexit
import datetime as dt
import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from pipelines import charts, config
from pipelines.bridge import CAUSAL_MEASURES

_KALEIDO_LOCK = threading.Lock()
_KALEIDO_STARTED = False
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


# --------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------
def _stop_kaleido() -> None:
    global _KALEIDO_STARTED
    if _KALEIDO_STARTED:
        try:
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
        except Exception:
            pass
        _KALEIDO_STARTED = False


def png_bytes(fig: go.Figure, width: int = 1200, height: int | None = None, scale: float = 2.0) -> bytes:
    """A PNG of the figure (kaleido drives the system chromium; one browser kept per process)."""
    global _KALEIDO_STARTED
    import warnings

    import kaleido

    h = height or int(fig.layout.height or 450)
    with _KALEIDO_LOCK:
        if not _KALEIDO_STARTED:
            kaleido.start_sync_server(silence_warnings=True)
            _KALEIDO_STARTED = True
            atexit.register(_stop_kaleido)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fig.to_image(format="png", width=width, height=h, scale=scale)


# --------------------------------------------------------------------------------------
# summary bullets (templates over the numbers)
# --------------------------------------------------------------------------------------
_ORDER = {"red": 0, "amber": 1, "green": 2, "n/a": -1}


def waterfall_steps(bridge: dict | None) -> dict:
    """The QoQ change by chain from a bridge report (`bridge.report()["waterfall"]`):
    {"steps": [{"label", "chain", "usd", "ci_low", "ci_high", "via_ai_metric", "other"}],
     "start", "end", "from_quarter"}."""
    out = {"steps": [], "start": None, "end": None, "from_quarter": None}
    if not bridge or not bridge.get("available", True):
        return out
    wf = bridge.get("waterfall") or {}
    out.update(from_quarter=wf.get("previous_quarter"), start=wf.get("start"), end=wf.get("end"))
    for it in wf.get("steps") or []:
        parts = {c["part"]: c["usd"] for c in it.get("components") or []}
        out["steps"].append({"label": it["label"], "chain": it["chain"], "usd": it["usd_change"],
                             "ci_low": it["usd_ci_low"], "ci_high": it["usd_ci_high"],
                             "via_ai_metric": parts.get("via_ai_metric"), "other": parts.get("other")})
    return out


def materially_inconsistent(chain: dict) -> bool:
    """The chain's implied and measured dollars disagree beyond their intervals by more than
    the configured tolerance (bridge `gap_material`): a warning on the pages and in the summary."""
    return chain.get("consistent") is False and bool(chain.get("gap_material"))


def consistency_detail(chain: dict, sentence: bool = False) -> str:
    """The chain's consistency note without its "Consistent:"/"Inconsistent:" verdict (the
    pages say the verdict in their own words); `sentence`: capitalized, to follow a full stop."""
    text = (chain.get("note") or "").removeprefix("Inconsistent:").removeprefix("Consistent:").strip()
    return text[:1].upper() + text[1:] if sentence else text


def chain_tab_label(chain: dict) -> str:
    return ("⚠ " if materially_inconsistent(chain) else "") + str(chain.get("name"))


against_holdout = charts.against_holdout


def measured_words(chain: dict) -> str:
    """What a chain's measured dollars are, in words: against the holdout, or on the
    treatment population alone."""
    return ("the holdout's measured dollars" if against_holdout(chain)
            else "the dollars measured on the treatment population")


def impact_split(bridge: dict | None) -> dict:
    """The bridge's total dollars split by what they are measured against:
    {"total", "against_holdout", "treatment_only"} (None where no chain has dollars)."""
    chains = [c for c in (bridge or {}).get("chains") or [] if c.get("usd_impact") is not None]
    causal = [c["usd_impact"] for c in chains if against_holdout(c)]
    alone = [c["usd_impact"] for c in chains if not against_holdout(c)]
    return {"total": sum(causal + alone) if chains else None, "against_holdout": sum(causal) if causal else None,
            "treatment_only": sum(alone) if alone else None}


def assumption_words(name: str) -> str:
    """An assumption's config name in words: "agent_cost_per_hour_usd" → "agent cost per hour"."""
    return name.removesuffix("_usd").replace("_", " ")


def assumptions_text(chain: dict) -> str:
    """The business assumptions a chain's dollars rest on, with their values, in words:
    "agent cost per hour: $48" (the name carries the unit; dollars get a "$", the config's
    "_usd" suffix goes)."""
    parts = []
    for name, a in sorted((chain.get("assumptions") or {}).items()):
        words = assumption_words(name)
        usd = str(a.get("unit") or "").startswith("USD")

        def num(v):
            if charts._bad(v):
                return "n/a"
            if not usd:
                return f"{v:g}"
            text = f"{v:,.4f}".rstrip("0")  # $48, $0.125, $0.004: the input an exec will quote
            whole, _, cents = text.partition(".")
            return f"${whole}" if not cents else f"${whole}.{cents.ljust(2, '0')}"
        if a.get("value") is not None:
            parts.append(f"{words}: {num(a['value'])}")
        elif a.get("by_feature"):
            # feature ids in words too ("code assistant 12", not "code_assistant 12": the QBR's summary)
            parts.append(f"{words}: " + ", ".join(f"{str(k).replace('_', ' ')} {num(v)}"
                                                  for k, v in sorted(a["by_feature"].items())))
    return "; ".join(parts) or "none"


fixed_assumptions = charts.fixed_assumptions


def ci_words(chain: dict) -> str:
    """The name of a chain's measured dollar interval: "95% CI, sampling only" when the
    dollars rest on a business assumption (held exact in it: a narrow interval then is not
    a precise figure), else "95% CI"."""
    return "95% CI, sampling only" if fixed_assumptions(chain) else "95% CI"


def ci_caveat(chain: dict) -> str:
    """A sentence saying what a chain's interval leaves out ("" when nothing)."""
    fixed = fixed_assumptions(chain)
    if not fixed:
        return ""
    names = ", ".join(assumption_words(n) for n in fixed)
    return (f"The interval covers sampling only: {names} {'is' if len(fixed) == 1 else 'are'} held "
            f"exact, so the figure is only as good as {'that assumption' if len(fixed) == 1 else 'those assumptions'}.")


def chains_frame(bridge: dict | None) -> pl.DataFrame:
    """Every chain of a bridge report in one table: its dollar impact, 95% interval, what
    the impact is measured against (the holdout, or the treatment population alone), the
    assumptions the dollars rest on, and whether the chain's implied dollars agree."""
    chains = (bridge or {}).get("chains") or []
    if not chains:
        return pl.DataFrame()
    return pl.DataFrame([{
        "chain": c.get("name"), "AI metric": charts.SHORT.get(c.get("ai_metric"), c.get("ai_metric")),
        "impact (USD)": c.get("usd_impact"), "95% CI low": c.get("usd_ci_low"),
        "95% CI high": c.get("usd_ci_high"), "P&L reading": charts.pnl_word(c),
        "measured against": ("the holdout (causal)" if against_holdout(c)
                             else "nothing: treatment only (the holdout has none of this line)"),
        "rests on assumptions": assumptions_text(c),
        "consistent with measured": ("✔ yes" if c.get("consistent") else
                                    "≈ immaterial gap" if c.get("consistent") is False and c.get("gap_material") is False
                                    else "⚠ no" if c.get("consistent") is False else "n/a"),
        "note": c.get("note") or "",
    } for c in chains], schema={"chain": pl.Utf8, "AI metric": pl.Utf8, "impact (USD)": pl.Float64,
                                "95% CI low": pl.Float64, "95% CI high": pl.Float64, "P&L reading": pl.Utf8,
                                "measured against": pl.Utf8,
                                "rests on assumptions": pl.Utf8, "consistent with measured": pl.Utf8,
                                "note": pl.Utf8})


def _causal_text(v, unit: str | None, diff: bool = False) -> str:
    """A treatment-vs-holdout figure in its unit: shares in % with two decimals (their
    difference in points, so 86.15% − 83.63% reads +2.52 pts), dollars per user in cents,
    anything else as the chain diagram prints numbers; the sign is the rounded value's
    (never "−$0.00"); `diff`: "+" before a positive one."""
    if charts._bad(v):
        return "n/a"
    if unit == "share":
        x = round(100 * v, 2) + 0.0
        text = f"{x:+.2f} pts" if diff and x != 0 else (f"{x:.2f} pts" if diff else f"{x:.2f}%")
        return text.replace("-", "−")
    if unit and unit.startswith("USD"):
        return charts.fmt_usd(v, signed=diff, cents=True)
    return charts.fmt_num(v, signed=diff)


def causal_frame(bridge: dict | None, for_csv: bool = False) -> pl.DataFrame:
    """The treatment-vs-holdout measures of a bridge report. On screen one short row per
    measure (values in their unit, the interval beside the difference, both group sizes in one
    column: ten columns did not fit a 1280-px screen); `for_csv`: every number in full."""
    causal = (bridge or {}).get("causal") or {}
    rows = [dict(v, key=k) for k, v in causal.items()]
    if for_csv:
        return pl.DataFrame([{"measure": r.get("label") or r["key"], "unit": r.get("unit"),
                              "treatment": r.get("treatment"), "holdout": r.get("holdout"),
                              "difference": r.get("diff"), "95% CI low": r.get("ci_low"),
                              "95% CI high": r.get("ci_high"), "users (treatment)": r.get("n_treatment"),
                              "users (holdout)": r.get("n_holdout"), "method": r.get("method")} for r in rows])

    def users(n):
        return "n/a" if n is None else f"{n:,}"

    return pl.DataFrame([{
        "measure": _causal_name(r),
        "treatment": _causal_text(r.get("treatment"), r.get("unit")),
        "holdout": _causal_text(r.get("holdout"), r.get("unit")),
        CAUSAL_DIFF: ("n/a" if charts._bad(r.get("diff")) else
                      f"{_causal_text(r.get('diff'), r.get('unit'), True)} "
                      f"[{_causal_text(r.get('ci_low'), r.get('unit'), True)}, "
                      f"{_causal_text(r.get('ci_high'), r.get('unit'), True)}]"),
        "users (treatment / holdout)": f"{users(r.get('n_treatment'))} / {users(r.get('n_holdout'))}",
    } for r in rows], schema={c: pl.Utf8 for c in ("measure", "treatment", "holdout", CAUSAL_DIFF,
                                                   "users (treatment / holdout)")})


CAUSAL_DIFF = "treatment − holdout (95% CI)"


def causal_caption(bridge: dict | None) -> str:
    """The caption under the treatment-vs-holdout table: which way the differences go (they
    are per-user outcomes, not P&L: the page's sign convention for dollars does not apply),
    what each short-named measure is, and the method."""
    parts = ["Differences are treatment − holdout in per-user outcomes, not P&L impact: a negative "
             "support cost per user is a saving."]
    defs = causal_definitions(bridge)
    if defs:
        parts.append(defs + ".")
    methods = causal_methods(bridge)
    if methods:
        parts.append("Method: " + "; ".join(methods) + ".")
    return " ".join(parts)


def _causal_name(r: dict) -> str:
    return CAUSAL_MEASURES.get(r.get("key"), {}).get("short") or r.get("label") or r.get("key")


def causal_definitions(bridge: dict | None) -> str:
    """What each treatment-vs-holdout measure is ("Support tickets per user: support tickets
    created in the quarter, per assigned user"), for the caption under the short-named table."""
    causal = (bridge or {}).get("causal") or {}
    def lower_first(text: str) -> str:  # "Agent hours …" -> "agent hours …"; "AI spend …" stays
        return text if text[1:2].isupper() else text[:1].lower() + text[1:]

    return " · ".join(f"**{_causal_name(dict(v, key=k))}**: {lower_first(v['label'])}"
                      for k, v in causal.items() if v.get("label") and _causal_name(dict(v, key=k)) != v["label"])


def causal_methods(bridge: dict | None) -> list[str]:
    """The treatment-vs-holdout methods, each once (the table's caption)."""
    methods = [v.get("method") for v in ((bridge or {}).get("causal") or {}).values() if v.get("method")]
    return list(dict.fromkeys(m.split(": ", 1)[-1] for m in methods))  # without the estimator's id ("welch_t: ")


def diagram_caption(chain: dict) -> str:
    """How to read a chain diagram: what its boxes and arrows hold, and why they need not
    multiply out."""
    holdout = any(not charts._bad(nd.get("counterfactual")) and nd.get("counterfactual") != 0
                  for nd in chain.get("nodes") or [])
    return ("Boxes: the quarter's measured values on the treatment population"
            + (" with the holdout's beside them (its counts scaled to the treatment population's size)"
               if holdout else "")
            + "; the last box is the P&L impact"
            + (" against the holdout" if against_holdout(chain) else ", on the treatment population alone")
            + ". Arrows: each edge's estimate. What the chain implies runs the AI metric's difference along the "
              "arrows, so the boxes need not multiply out; the consistency note compares the two.")


def steps_frame(chain: dict, for_csv: bool = False) -> pl.DataFrame:
    """A chain's edges: from and to (node labels), how each was obtained (bridge.edge_kind, as
    the diagram says it), the estimate and its interval as the diagram prints them, the unit
    and the basis; `for_csv`: node ids and every number in full."""
    steps = chain.get("steps") or []
    if for_csv:
        return pl.DataFrame([{"from": s.get("from"), "to": s.get("to"), "method": charts.edge_kind(s),
                              "estimate": s.get("estimate"), "95% CI low": s.get("ci_low"),
                              "95% CI high": s.get("ci_high"), "unit": s.get("unit"),
                              "how it was obtained": s.get("basis")} for s in steps])
    label = {nd.get("node"): nd.get("label") or nd.get("node") for nd in chain.get("nodes") or []}
    shown = [(s, charts.step_for_display(s)) for s in steps]  # per point of TCR, as the diagram says it
    return pl.DataFrame([{"from": label.get(s.get("from"), s.get("from")), "to": label.get(s.get("to"), s.get("to")),
                          "method": charts.edge_kind(s), "estimate": charts.fmt_num(d.get("estimate")),
                          "95% CI": charts.fmt_interval(d), "unit": d.get("unit"), "how it was obtained": s.get("basis")}
                         for s, d in shown],
                        schema={c: pl.Utf8 for c in ("from", "to", "method", "estimate", "95% CI", "unit",
                                                     "how it was obtained")})


def sample_words(sample: str | None) -> str | None:
    """Sample bad values as people read them: the gates store them as JSON (a list of rows,
    non-ASCII escaped: "\\u2212$185,204"); rows become "k=v, k=v" joined by "; ", text as
    written. Anything else is shown as stored."""
    if sample is None:
        return None
    try:
        value = json.loads(sample)
    except (TypeError, ValueError):
        return str(sample)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for row in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def gate_failures_frame(failing: list[tuple[str, dict]], samples: dict) -> pl.DataFrame:
    """A stage's failing expectations, (suite, result) pairs of a gate report: what failed and
    what was observed first, the suite (its stage is the page's heading) last, since at
    1280 px the columns after the fifth scroll out of sight. `samples`: sample bad values by
    (suite, expectation, column)."""
    return pl.DataFrame([{"result": "✖ critical" if r.get("severity") == "critical" else "⚠ warning",
                          "expectation": r.get("expectation"), "column": r.get("column"),
                          "observed": None if r.get("observed_value") is None else str(r.get("observed_value")),
                          "sample bad values": sample_words(samples.get((suite, r.get("expectation"), r.get("column")))),
                          "unexpected": r.get("unexpected_count"), "suite": suite}
                         for suite, r in failing],
                        schema={"result": pl.Utf8, "expectation": pl.Utf8, "column": pl.Utf8, "observed": pl.Utf8,
                                "sample bad values": pl.Utf8, "unexpected": pl.Int64, "suite": pl.Utf8})


def chains_print(bridge: dict | None) -> tuple[pl.DataFrame, list[str]]:
    """The chain table for print (the PDF): one short row per chain, dollars written out
    ("−$343", "−$3,222 to +$2,536"), and each chain's consistency note as a sentence under
    the table instead of a column a page wide."""
    chains = (bridge or {}).get("chains") or []
    if not chains:
        return pl.DataFrame(), []
    full = chains_frame(bridge)

    def usd(v):
        return charts.fmt_usd(v, signed=True, exact=True)

    df = pl.DataFrame([{
        "chain": r["chain"], "impact": usd(r["impact (USD)"]),
        "95% CI": ("n/a" if r["95% CI low"] is None or r["95% CI high"] is None else
                   "exact (no sampling error)" if usd(r["95% CI low"]) == usd(r["95% CI high"]) else  # not "−$830 to −$830"
                   f"{usd(r['95% CI low'])} to {usd(r['95% CI high'])}" + (" †" if fixed_assumptions(c) else "")),
        "P&L reading": r["P&L reading"],
        "measured against": "the holdout" if against_holdout(c) else "no holdout (treatment only)",
        "consistent with measured": r["consistent with measured"],
        "rests on assumptions": r["rests on assumptions"],
    } for r, c in zip(full.iter_rows(named=True), chains)])
    notes = [f"{c.get('name')}: {c['note']}" for c in chains if c.get("note")]
    if sampling_note(chains):
        notes.insert(0, SAMPLING_ONLY_NOTE)
    return df, notes


SAMPLING_ONLY_NOTE = ("† Sampling only: the interval leaves out the business assumptions the chain rests on, "
                      "which are held exact; the figure is only as good as they are.")


def sampling_note(chains: list[dict]) -> str:
    """The † footnote when some chain's interval is sampling only (it rests on an assumption), else ""."""
    return SAMPLING_ONLY_NOTE if any(fixed_assumptions(c) and c.get("usd_ci_low") is not None
                                     for c in chains) else ""


def _fmt_ci(lo, hi, chain: dict | None = None) -> str:
    """" (95% CI …)" for a bullet, "…, sampling only" when `chain` rests on an assumption held
    exact (a ±$73 interval on $1.6M is then not a precise figure)."""
    if lo is None or hi is None:
        return ""
    only = ", sampling only" if chain and fixed_assumptions(chain) else ""
    if charts.fmt_usd(lo, True) == charts.fmt_usd(hi, True):  # narrower than the rounding: its half-width
        return f" (95% CI ±{charts.fmt_usd((hi - lo) / 2)}{only})"
    return f" (95% CI {charts.fmt_usd_range(lo, hi)}{only})"


def retention_vs_holdout(causal: dict | None, to_date: bool = False) -> str:
    """The holdout test's 7-day retention (the bridge's causal measure `retained_7d_share`,
    treatment − holdout, intention-to-treat) in words, to read beside RΔ; "" without it.
    The two answer different questions, so neither is called above or below the other: the
    holdout test averages over every user offered the AI, those who never used it included;
    RΔ compares the users who used it with those who did not, a self-selected split."""
    r = (causal or {}).get("retained_7d_share") or {}
    if any(charts._bad(r.get(k)) for k in ("diff", "ci_low", "ci_high")):
        return ""
    d, lo, hi = (100 * float(r[k]) for k in ("diff", "ci_low", "ci_high"))

    pts = charts.fmt_signed1
    zero = ", not distinguishable from 0" if lo <= 0 <= hi else ""
    return (f"Holdout test{' (quarter to date)' if to_date else ''}: 7-day retention {pts(d)} pts "
            f"[{pts(lo)}, {pts(hi)}]{zero} for users offered the AI, whether they used it or not, against users "
            "never offered it (causal); RΔ compares users who used the AI with those who did not")


def summary_bullets(card: dict, bridge: dict | None = None, hr_domains: pl.DataFrame | None = None) -> list[str]:
    """Plain sentences from the numbers: what crossed a threshold and what it was worth,
    what is still red, the per-domain HR, the bridge's dollars and any inconsistency."""
    bullets: list[str] = []
    q, prev_q = card["quarter"], card.get("previous_quarter")
    if not card.get("has_data"):
        return [f"No interactions in {q}: there is nothing to summarise."]
    chains = {c.get("ai_metric"): c for c in (bridge or {}).get("chains", []) or []} if bridge else {}
    wf = {}
    for s in waterfall_steps(bridge)["steps"]:
        wf[s["chain"]] = wf[s["label"]] = s
    crossed = []
    for m in card["metrics"]:
        key, label = m["metric"], charts.SHORT[m["metric"]]
        if m["previous_status"] in ("n/a",) or m["status"] == "n/a" or m["status"] == m["previous_status"]:
            continue
        worse = _ORDER[m["status"]] < _ORDER[m["previous_status"]]
        verb = "worsened" if worse else "improved"
        line = (f"{label} {verb} from {charts.fmt_value(key, m['previous'])} ({m['previous_status']}) in {prev_q} "
                f"to {charts.fmt_value(key, m['value'])} ({m['status']}) in {q}, crossing its threshold "
                f"({charts.threshold_short(key)}).")
        chain = chains.get(key) or chains.get(label)
        if chain is not None:
            step = wf.get(chain.get("id")) or wf.get(chain.get("name"))
            if step and step.get("usd") is not None:
                line += (f" Along the {chain.get('name')} chain the quarter-over-quarter change is worth "
                         f"{charts.fmt_usd(step['usd'], True)}{_fmt_ci(step.get('ci_low'), step.get('ci_high'), chain)}")
                if step.get("via_ai_metric") is not None:
                    line += (f": {charts.fmt_usd(step['via_ai_metric'], True)} from {label}'s own move and "
                             f"{charts.fmt_usd(step['other'], True)} from volume, mix and conversion rates")
                line += "."
            elif chain.get("usd_impact") is not None:
                line += (f" The {chain.get('name')} chain puts this quarter's impact at "
                         f"{charts.fmt_usd(chain['usd_impact'], True)}"
                         f"{_fmt_ci(chain.get('usd_ci_low'), chain.get('usd_ci_high'), chain)} against the holdout.")
        crossed.append(line)
    bullets += crossed or ([f"No L6 metric changed status against {prev_q}."] if prev_q else
                           [f"{q} is the first quarter in the data: there is no previous quarter to compare."])
    reds = [m for m in card["metrics"] if m["status"] == "red"]
    if reds:
        bullets.append("Red this quarter: " + "; ".join(
            f"{charts.SHORT[m['metric']]} at {charts.fmt_value(m['metric'], m['value'])} ({charts.threshold_short(m['metric'])})"
            + (f" — {m['note']}" if m["note"] else "") for m in reds) + ".")
    ambers = [m for m in card["metrics"] if m["status"] == "amber"]
    if ambers:
        bullets.append("Amber (between its green and red lines) this quarter: " + "; ".join(
            f"{charts.SHORT[m['metric']]} at {charts.fmt_value(m['metric'], m['value'])} ({charts.threshold_short(m['metric'])})"
            + (f" — {m['note']}" if m["note"] else "") for m in ambers) + ".")
    greens = [charts.SHORT[m["metric"]] for m in card["metrics"] if m["status"] == "green"]
    if greens:
        bullets.append(f"On target (green): {', '.join(greens)}.")
    for m in card["metrics"]:  # where the quarter ended worse than its average
        if m.get("recent_status") in (None, "n/a") or m["status"] == "n/a":
            continue
        if _ORDER[m["recent_status"]] < _ORDER[m["status"]]:
            bullets.append(
                f"{charts.SHORT[m['metric']]} ended {q} worse than its quarter value: "
                f"{charts.fmt_value(m['metric'], m['recent'])} ({m['recent_status']}) over the last "
                f"{(card['recent_to'] - card['recent_from']).days + 1} days ({card['recent_from']:%b %-d} – "
                f"{card['recent_to']:%b %-d}), against {charts.fmt_value(m['metric'], m['value'])} "
                f"({m['status']}) for the quarter.")
    row = card.get("row") or {}
    hr = next((m for m in card["metrics"] if m["metric"] == "hr"), None)
    t3 = row.get("tier3_hr")
    if hr and t3 is not None and hr["status"] != "n/a" and _ORDER[config.status("hr", t3)] < _ORDER[hr["status"]]:
        bullets.append(f"Behavioral (tier-3) signals, what users did after the output, kept beside the final "
                       f"verdicts, mark {100 * t3:.1f}% as hallucinated ({config.status('hr', t3)} on HR's thresholds) against "
                       f"HR {charts.fmt_value('hr', hr['value'])} ({hr['status']}): the final verdicts may "
                       "understate hallucinations.")
    rd = next(m for m in card["metrics"] if m["metric"] == "retention_delta_pts")
    if rd["value"] is None:
        row = card.get("row") or {}
        bullets.append(f"Retention Delta is not reported for {q}: too few users in a group "
                       f"(AI {row.get('rd_n_ai') or 0:,}, non-AI {row.get('rd_n_non_ai') or 0:,}).")
    else:
        against = retention_vs_holdout((bridge or {}).get("causal") if bridge else None, bool(card.get("to_date")))
        if against:
            bullets.append(against + ".")
    hitl = next(m for m in card["metrics"] if m["metric"] == "hitl_per_100")
    trigger = config.metric_contract()["metrics"]["hitl_per_100"].get("trigger")
    if trigger and hitl["value"] is not None and hitl["value"] > trigger:
        bullets.append(f"HitL-F is {hitl['value']:.2f} per 100 queries, above the {trigger:g} retraining trigger.")
    if hr_domains is not None and hr_domains.height:
        over = hr_domains.filter(pl.col("status") == "red").sort("hr", descending=True)
        watch = hr_domains.filter(pl.col("status") == "amber").sort("hr", descending=True)
        if over.height:
            bullets.append("HR above the 5% red line in " + ", ".join(
                f"{d} ({100 * v:.1f}%)" for d, v in zip(over["domain"], over["hr"])) + ".")
        if watch.height:
            bullets.append("HR between 3% and 5% (amber) in " + ", ".join(
                f"{d} ({100 * v:.1f}%)" for d, v in zip(watch["domain"], watch["hr"])) + ".")
        if not over.height and not watch.height:
            bullets.append("Every domain's HR is at or under the 3% green bar.")
    if bridge and bridge.get("available", True) and bridge.get("chains"):
        ch = bridge["chains"]
        total = sum(c.get("usd_impact") or 0 for c in ch)
        top = max(ch, key=lambda c: abs(c.get("usd_impact") or 0))
        causal = [c for c in ch if against_holdout(c) and c.get("usd_impact") is not None]
        alone = [c for c in ch if not against_holdout(c) and c.get("usd_impact") is not None]
        line = (f"The KPI bridge values {q}'s AI impact at {charts.fmt_usd(total, True)} across {len(ch)} chains "
                f"(assumptions {bridge.get('assumptions_version', '?')})")
        if causal and alone:
            line += (f": {charts.fmt_usd(sum(c['usd_impact'] for c in causal), True)} measured against the holdout ("
                     + ", ".join(c.get("name") for c in causal) + f") and "
                     f"{charts.fmt_usd(sum(c['usd_impact'] for c in alone), True)} on the treatment population "
                     "alone, P&L lines the holdout has none of ("
                     + ", ".join(f"{c.get('name')} {charts.fmt_usd(c['usd_impact'], True)}" for c in alone) + ")")
        line += (f"; the largest is {top.get('name')} at {charts.fmt_usd(top.get('usd_impact'), True)}"
                 f"{_fmt_ci(top.get('usd_ci_low'), top.get('usd_ci_high'))}, which rests on "
                 f"{assumptions_text(top)}. The intervals cover sampling only, not the assumptions.")
        bullets.append(line)
        steps = waterfall_steps(bridge)["steps"]
        if steps:
            net = sum(s["usd"] or 0 for s in steps)
            bars = charts.waterfall_bars(steps)
            own = [b for b in bars if b["part"] == charts.METRIC_PART]
            rest = [b for b in bars if b["part"] == charts.OTHER_PART]
            whole = [b for b in bars if b["part"] == charts.WHOLE_PART]  # chains without the split
            line = f"Quarter over quarter the dollars moved {charts.fmt_usd(net, True)}"
            clauses = []
            if own:
                lead = max(own, key=lambda b: abs(b["usd"] or 0))
                clauses.append(f"the AI metrics' own moves {charts.fmt_usd(sum(b['usd'] or 0 for b in own), True)} "
                               f"(largest {lead['chain']}, {charts.fmt_usd(lead['usd'], True)})")
            if rest:
                # the chains' own volume, mix and rate moves can offset each other (review cost
                # −$106.5k against productivity value +$91.5k): name the largest two
                parts = sorted((b for b in rest if b["usd"]), key=lambda b: -abs(b["usd"]))[:2]
                by_chain = (" (" + ", ".join(f"{b['chain']} {charts.fmt_usd(b['usd'], True)}" for b in parts) + ")"
                            if parts else "")
                clauses.append(f"volume, mix and rates {charts.fmt_usd(sum(b['usd'] or 0 for b in rest), True)}"
                               f"{by_chain}")
            unsplit = ", ".join(f"{b['chain']} {charts.fmt_usd(b['usd'], True)}" for b in whole)
            if clauses:
                line += ": " + " and ".join(clauses) + (f"; not split into the two: {unsplit}" if whole else "") + "."
            else:
                line += f" ({unsplit}; not split into the AI metric's own move and volume, mix and rates)."
            bullets.append(line)
        for c in ch:
            if materially_inconsistent(c):
                bullets.append(f"Check {c.get('name')}: the chain's implied dollars "
                               f"({charts.fmt_usd(c.get('usd_implied'), True)}) and {measured_words(c)} "
                               f"({charts.fmt_usd(c.get('usd_impact'), True)}) disagree beyond their intervals; "
                               "trust the measured figure (details on the Bridge page).")
    return bullets


def partial_periods_note(grain: str, starts: list[dt.date], data_from: dt.date, data_to: dt.date,
                         bounds, date_from: dt.date | None = None, date_to: dt.date | None = None) -> str | None:
    """Explore's partial periods in words. A chart point is labelled with its period's start,
    so a first week starting 2026-03-30 over data from 2026-04-01 (or a last month cut at
    the data's end or the To date) says which dates it holds. `starts`: the periods shown;
    `data_from`, `data_to`: the data's first and last date, narrowed by the optional
    `date_from`, `date_to` filter; `bounds(start, grain)`: a period's first and last date
    (data_access.period_bounds). None when every period shown is whole."""
    word = {"week": "week", "month": "month", "quarter": "quarter"}.get(grain)
    if not word or not starts:
        return None
    shown_from, shown_to = max(date_from or data_from, data_from), min(date_to or data_to, data_to)
    first, last = bounds(min(starts), grain), bounds(max(starts), grain)
    cut_from, cut_to = shown_from > first[0], shown_to < last[1]
    if first == last:  # one period: one sentence
        if not (cut_from or cut_to):
            return None
        held = (f"from {shown_from} through {shown_to}" if cut_from and cut_to else
                f"from {shown_from}" if cut_from else f"through {shown_to}")
        return (f"Partial {word}: the {word} starting {first[0]} holds data {held} only. Its counts (interactions, "
                f"tickets, dollars) cover fewer days than a whole {word}; rates and medians read as usual.")
    parts = []
    if cut_from:
        parts.append(f"the first {word} starting {first[0]} holds data from {shown_from} only")
    if cut_to:
        parts.append(f"the last {word} starting {last[0]} holds data through {shown_to} only")
    if not parts:
        return None
    return (f"Partial {word}s: {'; '.join(parts)}. Their counts (interactions, tickets, dollars) cover fewer days "
            f"than a whole {word}; rates and medians read as usual.")


def cpvo_slice_note(metrics: list[str], sliced_by: list[str]) -> str | None:
    """CPVO on a slice other than feature carries each period's whole infra cost (the
    contract's reading of SPEC §3: infra_costs split only by feature), so a small slice's
    CPVO runs high. `sliced_by`: the labels of the slices filtered or compared on."""
    others = [s for s in sliced_by if s.lower() != "feature"]
    if "cpvo_usd" not in metrics or not others:
        return None
    return (f"CPVO on a slice by {', '.join(dict.fromkeys(o.lower() for o in others))} carries the whole platform's "
            "infra cost of each period (infra costs are split only by feature, SPEC §3), so a small slice's CPVO "
            "runs high; the “AI spend $” measure shares infra out by each feature's interactions instead.")


def what_if_interval(res: dict) -> str:
    """The what-if's interval in words: the 95% CI from the chain's edge intervals, or, when
    every edge is a count measured in the quarter or an assumption (no sampling error, so
    the two ends print the same), that the move is the chain's exact arithmetic."""
    lo, hi = res.get("usd_ci_low"), res.get("usd_ci_high")
    if lo is None or hi is None:
        return "No interval: the chain has an edge without an estimate."
    if not res.get("usd_change") and lo == hi == 0:
        return "At the quarter's own value nothing moves yet."
    if hi - lo < 0.5:  # not "the ends print alike": $146 wide on $1.6M is an interval
        return (f"No sampling interval ({charts.fmt_usd(lo, True)}): this chain's edges are counts measured in the quarter and business "
                "assumptions, so the move is their exact arithmetic; the assumptions' own uncertainty is not in it.")
    return f"95% CI {charts.fmt_usd_range(lo, hi)}, from the chain's edge intervals (the assumptions' own uncertainty is not in it)."


def hr_domains_frame(df: pl.DataFrame, for_csv: bool = False) -> pl.DataFrame:
    """HR by domain as the chart orders it (highest first): for print, the rate and its 95%
    interval in percent, the status in words, counts with thousands separators and the share
    adjudicated; `for_csv`: the same rows with every number in full (percent, not rounded)."""
    if df is None or df.is_empty():
        cols = (["domain", "interactions", "adjudicated", "hallucinated", "hr_pct", "ci_low_pct", "ci_high_pct",
                 "coverage_pct", "status"] if for_csv else
                ["domain", "HR", "95% CI", "status", "adjudicated", "interactions", "share adjudicated"])
        return pl.DataFrame(schema={c: pl.Utf8 for c in cols})
    df = df.sort("hr", descending=True, nulls_last=True)
    if for_csv:  # the column names decks already read
        return df.select("domain", "interactions", "adjudicated", "hallucinated",
                         (pl.col("hr") * 100).alias("hr_pct"), (pl.col("hr_ci_low") * 100).alias("ci_low_pct"),
                         (pl.col("hr_ci_high") * 100).alias("ci_high_pct"),
                         (pl.col("coverage") * 100).alias("coverage_pct"), "status")

    def pct(v, digits=2):
        return "n/a" if charts._bad(v) else f"{100 * v:.{digits}f}%"
    return pl.DataFrame([{
        "domain": r["domain"], "HR": pct(r["hr"]),
        "95% CI": ("n/a" if charts._bad(r["hr_ci_low"]) or charts._bad(r["hr_ci_high"])
                   else f"{pct(r['hr_ci_low'])} – {pct(r['hr_ci_high'])}"),
        "status": charts.status_text(r["status"]), "adjudicated": f"{r['adjudicated']:,}",
        "interactions": f"{r['interactions']:,}", "share adjudicated": pct(r["coverage"], 1),
    } for r in df.iter_rows(named=True)])


# the audit's stored notes name metrics and counter-metrics by their ids ("tcr did not
# improve, so requery_rate worsening …"): on a page they read by name
AUDIT_NAMES = {**{m: charts.SHORT[m] for m in config.METRICS}, "support_contacts_per_1k": "support contacts per 1,000",
               "requery_rate": "re-query rate", "completed_escalation_rate": "escalations after completion",
               "hr_coverage": "HR coverage"}
_AUDIT_ID = re.compile(r"\b(" + "|".join(sorted(map(re.escape, AUDIT_NAMES), key=len, reverse=True)) + r")\b")


ALIGNMENT_MEASURE_NOTE = (
    "Support contacts per 1,000 AI interactions here are weekly: the tickets filed in an ISO week by users who "
    "used the AI that week, per 1,000 of that week's AI interactions. The Bridge page's figure of the same name "
    "is the quarter's, over the treatment group's users and all their tickets, so the two read differently.")


def gaming_line(g: dict) -> str:
    """An anti-gaming pair and its note in words ("TCR vs re-queries within 5 minutes …: no sign
    of gaming: …")."""
    counter = g.get("counter_label") or plain_names(g.get("counter"))
    return f"{plain_names(g.get('primary'))} vs {counter}: {plain_names(g.get('note', ''))}"


def plain_names(text: str) -> str:
    """An audit note with its metric ids as names ("tcr" → "TCR", "requery_rate" → "re-query rate")."""
    return _AUDIT_ID.sub(lambda m: AUDIT_NAMES[m.group(1)], str(text or ""))


def guardrail_line(g: dict, window: dict | None = None) -> str:
    """An audit guardrail (or efficiency bar) in display units and words: the limit, the
    overall value, and where it broke ("violated in billing" when only a domain did).
    `window` ({"start", "end"}: the audit window) is named beside the value: the same metric
    on Home and QBR is the quarter's ($0.0039 there, $0.0041 over the audit's 8 weeks)."""
    met = g.get("metric")
    if met in charts.SHORT:  # display units, and enough decimals to tell the value from the limit
        value, limit = charts.fmt_beside(met, g.get("value"), g.get("limit"))
    else:
        value, limit = ("n/a" if v is None else f"{v:.4g}" for v in (g.get("value"), g.get("limit")))
    if g.get("violated") and not g.get("overall_violated") and g.get("domains_violated"):
        where = f"⚠ violated in {', '.join(g['domains_violated'])} (per domain, below)"
    else:
        where = "⚠ violated" if g.get("violated") else "✔ held"
    span = ""
    if window and window.get("start") and window.get("end"):  # as the page's caption writes it
        span = f" in the audit window {str(window['start'])[:10]} → {str(window['end'])[:10]}"
    return (f"**{charts.SHORT.get(met, met)}** ({g.get('role')}) {charts.OPS.get(g.get('op'), g.get('op'))} "
            f"{limit}: value {value} overall{span} — {where}. {g.get('note', '')}").rstrip()


def guardrail_domains_frame(g: dict) -> pl.DataFrame:
    """A guardrail's per-domain values in display units with their 95% interval and the
    verdict in words. The audit counts a domain as violated only when its whole interval is
    past the limit; a value past the limit whose interval reaches back across it reads
    "past the limit, not conclusive", never "held". Furthest past the limit first."""
    met, rows, op, limit = g.get("metric"), g.get("per_domain") or [], g.get("op"), g.get("limit")
    name = charts.SHORT.get(met) or str(met or "value")
    upper = op in ("<", "<=")  # the limit is a ceiling

    def fmt(v):
        if charts._bad(v):
            return "n/a"
        return charts.fmt_value(met, v, 1) if met in charts.SHORT else f"{v:.4g}"

    def status(r):
        v = r.get("value")
        if charts._bad(v):
            return "n/a"
        if r.get("violated"):
            return "⚠ violated"
        past = not charts._bad(limit) and (v > limit if upper else v < limit)
        return "past the limit, not conclusive (its interval crosses it)" if past else "✔ held"

    def excess(r):
        v = r.get("value")
        if charts._bad(v) or charts._bad(limit):
            return float("inf")
        return -(v - limit) if upper else -(limit - v)

    return pl.DataFrame([{
        "domain": r.get("domain"), name: fmt(r.get("value")),
        "95% CI": (f"{fmt(r.get('ci_low'))} to {fmt(r.get('ci_high'))}"
                   if not charts._bad(r.get("ci_low")) and not charts._bad(r.get("ci_high")) else "n/a"),
        "limit": f"{charts.OPS.get(op, op or '')} {fmt(limit)}".strip(),
        "status": status(r),
    } for r in sorted(rows, key=lambda r: (not r.get("violated"), excess(r)))],
        schema={"domain": pl.Utf8, name: pl.Utf8, "95% CI": pl.Utf8, "limit": pl.Utf8, "status": pl.Utf8})


RUN_STATUS_WORDS = {"success": "✔ success", "gate_failed": "✖ gate failed", "error": "✖ error",
                    "running": "… running"}


def runs_frame(runs: pl.DataFrame) -> pl.DataFrame:
    """The run history in words, newest first, for reading on the page: status with its icon,
    started to the minute, how long the run took (blank while it runs), the stage it failed
    at and its message. The source and each stage's seconds stay in the CSV."""
    def took(r) -> str:
        if not r["finished_at"] or not r["started_at"]:
            return ""
        return duration_words((r["finished_at"] - r["started_at"]).total_seconds())
    return pl.DataFrame([{
        "run": r["run_id"], "command": r["command"],
        "started (UTC)": str(r["started_at"] or "")[:16].replace("T", " "),
        "took": took(r), "status": RUN_STATUS_WORDS.get(r["status"], r["status"]),
        "failed stage": r["failed_stage"] or "—", "message": r["message"] or "",
    } for r in runs.iter_rows(named=True)], schema={c: pl.Utf8 for c in (
        "run", "command", "started (UTC)", "took", "status", "failed stage", "message")})


def duration_words(seconds: float) -> str:
    """'6.2 s', '12 min 5 s', '1 h 30 min'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def runs_caption(shown: int, total: int) -> str:
    """What the run history table holds, in words."""
    which = ("One run so far" if total == 1 else f"All {total:,} runs, newest first" if shown >= total
             else f"The latest {shown:,} of {total:,} runs, newest first")
    return f"{which}. The CSV holds every run with its source and each stage's seconds."


def audit_runs_frame(runs: list[dict], now: dict | None = None) -> pl.DataFrame:
    """The runs an audit's data-quality check read, in words. A run still going when the
    audit was recorded (the demo and `run` audit inside the run) says so, with its outcome
    from `now` ({run_id: status} of the run history) when it has one."""
    now = now or {}

    def status(r):
        if r.get("status") != "running":
            return r.get("status") or "n/a"
        ended = now.get(r.get("run_id"))
        if ended and ended != "running":
            return f"in progress when audited; ended: {ended}"
        return "in progress when audited" + ("" if ended else "; outcome not known")

    def why(r):
        if r.get("in_window"):
            return "inside the audit window"
        return "built this warehouse" if r.get("built_this_warehouse") else "—"

    def count(v):
        return None if charts._bad(v) else int(v)
    return pl.DataFrame([{
        "run": r.get("run_id"), "command": r.get("command"),
        "started (UTC)": str(r.get("started_at") or "")[:16].replace("T", " "), "status": status(r),
        "why read": why(r), "checks": count(r.get("checks")), "critical failures": count(r.get("critical_failures")),
        "warnings": count(r.get("warnings")),
    } for r in runs], schema={"run": pl.Utf8, "command": pl.Utf8, "started (UTC)": pl.Utf8, "status": pl.Utf8,
                              "why read": pl.Utf8, "checks": pl.Int64, "critical failures": pl.Int64,
                              "warnings": pl.Int64})


def ended_badly_after_audit(runs: list[dict], now: dict | None) -> list[str]:
    """Runs the audit saw in progress (and so did not flag) that have since ended other than
    in success."""
    now = now or {}
    return [r.get("run_id") for r in runs if r.get("status") == "running"
            and now.get(r.get("run_id")) not in (None, "running", "success")]


def audit_history_frame(history: list[dict], for_csv: bool = False) -> pl.DataFrame:
    """The recorded audits, newest first as given: times to the minute, "—" for what has no
    value yet (not "None"), what each flagged by check ("decay ×5, guardrail"; `for_csv`:
    every flag in full)."""
    cols = {"audit_id": "audit", "created_at": "recorded (UTC)", "as_of": "as of", "score": "score",
            "verdict": "recommendation", "decision": "decision", "signed_by": "signed by",
            "signed_at": "signed (UTC)", "next_due": "next due"}

    def cell(h, c):
        v = h.get(c)
        if charts._bad(v):
            return "—"
        if c == "score":
            return charts.fmt_signed1(v)
        if c.endswith("_at"):
            return str(v)[:16].replace("T", " ")
        return str(v)[:10] if c in ("as_of", "next_due") else str(v)

    def flagged(h):
        flags = [str(x.get("check") or x.get("name") or "other") if isinstance(x, dict) else str(x)
                 for x in h.get("flags") or []]
        if for_csv:
            return "; ".join(flags) or "—"
        checks: dict[str, int] = {}
        minor: dict[str, int] = {}  # "drift (minor): …" is a note beside an ok check, not a flag
        for f in flags:  # "decay: tcr is at its red line" → decay
            check = f.split(":")[0].replace("_", " ")
            into = minor if check.endswith(" (minor)") else checks
            check = check.removesuffix(" (minor)")
            into[check] = into.get(check, 0) + 1

        def counted(d: dict) -> str:
            return ", ".join(k + (f" ×{n}" if n > 1 else "") for k, n in d.items())
        text = "; ".join(filter(None, (counted(checks), "minor shifts: " + counted(minor) if minor else "")))
        return text or "—"
    return pl.DataFrame([{label: cell(h, c) for c, label in cols.items()} | {"flagged": flagged(h)}
                         for h in history], schema={**{label: pl.Utf8 for label in cols.values()}, "flagged": pl.Utf8})


def warning_effect(warnings: list[dict], ingest: pl.DataFrame | None = None,
                   inputs: list[str] | tuple[str, ...] | None = None) -> str:
    """What gate warnings on a figure's inputs mean for the figure, in words. A warning of
    the raw or staging suite is about rows staging removed (exact duplicates) or
    quarantined with a reason: the figure is computed without them, and the feed needs a
    look; with the warned run's ingest summary (`ingest`: rows read, de-duplicated and
    quarantined per table) and the figure's input tables (`inputs`) the line says how many
    of those tables' rows, and their share of the rows read (the run's, whatever slice the
    figure shows). A later stage's warning (e.g. days without interactions) is about the data
    the figure is computed from."""
    if not warnings:
        return ""
    n = len(warnings)
    head = f"⚠ {n} data-quality warning{'s' if n > 1 else ''}"
    if all(_on_rows(w) for w in warnings):
        runs = {w.get("run_id") for w in warnings}
        if ingest is not None and ingest.height and "run_id" in ingest.columns and set(ingest["run_id"]) == runs:
            rows = ingest.filter(pl.col("table_name").is_in(list(inputs))) if inputs is not None else ingest
            dup, quar, read = (int(rows[c].sum() or 0) for c in ("rows_deduplicated", "rows_quarantined", "rows_read"))
            if read and dup + quar:
                share = 100 * (dup + quar) / read
                return (f"{head}: {dup:,} duplicate and {quar:,} quarantined rows of its input tables left out "
                        f"({'<0.01' if share < 0.01 else f'{share:.2f}'}% of {read:,} read in the run)")
        return f"{head}: rows removed or quarantined before this figure"
    later = sorted({str(w.get("expectation") or "a check").replace("_", " ")
                    + (f" on {w['table']}" if w.get("table") else "") for w in warnings if not _on_rows(w)})
    return f"{head}: {', '.join(later)} (it may bear on this figure)"


def _on_rows(w: dict) -> bool:
    """A gate warning about rows staging removes or quarantines (not, e.g., about freshness)."""
    return w.get("stage") in ("raw", "staging") and w.get("applies_to", "metrics") == "metrics"


def warning_help(warnings: list[dict]) -> str:
    """The help beside a figure's warning line: what it means for the figure, then each
    warning's sentence (Markdown list)."""
    meaning = ("The figure is computed without the rows at fault; the feed needs a look. "
               if all(_on_rows(w) for w in warnings) else "")
    return (meaning + "Gate warnings of the run these numbers come from (Data quality page):  \n"
            + "  \n".join(f"- {w.get('text', '')}" for w in warnings))


def audit_checks_line(findings: dict) -> str:
    """The audit's checks in one line with their states, in words ("**drift** ✔ ok (minor
    shifts) · **alignment** ? inconclusive · …"): a bare "✔ ok" beside drift's minor shifts or
    an inconclusive alignment overstated what the tabs show."""
    names = {"guardrails": "guardrails & efficiency", "tier_agreement": "tier agreement",
             "data_quality": "data quality"}
    parts = []
    for check, flagged in (findings.get("flagged") or {}).items():
        word = {True: "⚠ flagged", False: "✔ ok", None: "– not checked"}.get(flagged, str(flagged))
        if check == "alignment" and (findings.get("alignment") or {}).get("inconclusive"):
            word = "? inconclusive"
        elif check == "drift" and flagged is False and any(
                isinstance(v, dict) and v.get("shift_detected") for v in (findings.get("drift") or {}).values()):
            word = "✔ ok (minor shifts)"
        parts.append(f"**{names.get(check, check.replace('_', ' '))}** {word}")
    return " · ".join(parts)


def _signed(v: float) -> str:
    """"−6", "+2.5", "0": a minus sign, as the rest of the report prints it."""
    return "0" if v == 0 else f"{v:+g}".replace("-", "−")


def score_scale_text(scale: dict, sep: str = ";") -> str:
    """The audit score's scale in words: "on a scale of −6.5 to +2.5; keep at 0 or more"."""
    return (f"on a scale of {_signed(scale['low'])} to {_signed(scale['high'])}{sep} keep at "
            f"{_signed(scale['keep_min'])} or more")


def audit_bullet(record: dict | None, scale: dict | None = None) -> str | None:
    """One sentence on the 8-week metric audit behind a quarter (the record's findings, as
    audit.get returns it): its recommendation with the score on its scale (`scale`:
    audit.score_range()), what it flagged, and the sign-off (the human decision) apart."""
    if not record or not isinstance(record.get("findings"), dict):
        return None
    f = record["findings"]
    window = f.get("window") or {}
    parts = []
    if f.get("reference_empty"):  # a score of 0 then means "not compared", not "steady"
        parts.append("nothing compared: its reference window holds no data")
    decay = {m: d for m, d in (f.get("decay") or {}).items() if d.get("flagged")}
    at_red = [charts.SHORT.get(m, m) for m, d in decay.items() if d.get("weeks_to_red") == 0]
    # a line fitted across a one-off step reads it as a trend: those metrics are named apart
    stepped = {m: d["level_shift"] for m, d in decay.items() if d.get("weeks_to_red") != 0 and charts.steady_step(d)}
    heading = [charts.SHORT.get(m, m) for m, d in decay.items() if d.get("weeks_to_red") != 0 and m not in stepped]
    if at_red:
        parts.append("at its red line by trend: " + ", ".join(at_red))
    if heading:
        parts.append("heading to red: " + ", ".join(heading))
    for week in sorted({sh["week_start"] for sh in stepped.values()}):
        names = [charts.SHORT.get(m, m) for m, sh in stepped.items() if sh["week_start"] == week]
        parts.append(f"a one-off step toward red in the week of {week}, steady since (not a trend): "
                     + ", ".join(names))
    drifted = [v for v, d in (f.get("drift") or {}).items() if d.get("flagged")]
    if drifted:
        parts.append("input drift in " + ", ".join(drifted))
    flagged = f.get("flagged") or {}
    north = charts.SHORT.get((f.get("contract") or {}).get("north_star"), "the north star")
    behavior = ((f.get("contract") or {}).get("behavior") or {}).get("name") or "the behavior it should drive"
    for key, words in (("calibration", "confidence miscalibrated"), ("tier_agreement", "tier-1/tier-2 disagree"),
                       ("alignment", f"{north} no longer moves {behavior} as it did"),
                       ("gaming", "a metric may be gamed"), ("data_quality", "critical gate failures in its runs")):
        if flagged.get(key):
            parts.append(words)
    for g in f.get("guardrails") or []:
        if g.get("violated"):
            metric = g.get("metric")
            where = f" in {', '.join(g['domains_violated'])}" if g.get("domains_violated") else ""
            limit = charts.fmt_value(metric, g["limit"]) if metric in charts.SHORT else f"{g.get('limit'):g}"
            # "in those weeks": the audit's window, not the quarter, whose figure can sit on the
            # other side of the limit (CPVO $0.0041 over the 8 weeks, $0.0039 for the quarter)
            parts.append(f"{g.get('role', 'guardrail')} {charts.SHORT.get(metric, metric)} "
                         f"{charts.OPS.get(g.get('op'), g.get('op'))} {limit} broken{where} in those weeks")
    verdict = record.get("verdict") or f.get("verdict") or "no verdict"
    why = (f.get("scorecard") or {}).get("reason")
    if why and str(why).startswith("score"):  # "score -6 < 0" restates the score and the bar
        why = None
    score = "no score"
    if record.get("score") is not None:
        score = f"score {_signed(record['score'])}"
        if scale:
            score += " " + score_scale_text(scale, sep=",")
    signed = (f"Signed off by {record['signed_by']}: “{record.get('decision') or 'no decision text'}”."
              if record.get("signed_by") else "Not signed off yet.")
    return (f"The 8-week metric audit as of {record.get('as_of')} (weeks {window.get('start')} – "
            f"{window.get('end')}) recommends “{verdict}” ({score}" + (f"; {why}" if why else "") + ")"
            + (": " + "; ".join(parts) + "." if parts else ": nothing flagged.") + f" {signed}")


# --------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------
def _pdf_text(s: Any) -> str:
    return "" if s is None else str(s)


class _PDF:
    def __init__(self, title: str):
        from fpdf import FPDF

        self.pdf = FPDF(orientation="L", unit="mm", format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=12)
        self.pdf.set_title(title)
        self.unicode = (FONT_DIR / "DejaVuSans.ttf").exists()
        if self.unicode:
            self.pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
            self.pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
            self.family = "DejaVu"
        else:
            self.family = "Helvetica"
        self.pdf.add_page()

    def t(self, s: Any) -> str:
        s = _pdf_text(s)
        if not self.unicode:
            s = s.encode("latin-1", "replace").decode("latin-1")
        return s

    def h(self, text: str, size: int = 16) -> None:
        self.pdf.set_font(self.family, "B", size)
        self.pdf.multi_cell(0, size * 0.5, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1.5)

    def p(self, text: str, size: int = 10) -> None:
        self.pdf.set_font(self.family, "", size)
        self.pdf.multi_cell(0, size * 0.5, self.t(text), new_x="LMARGIN", new_y="NEXT")

    def bullets(self, items: list[str]) -> None:
        self.pdf.set_font(self.family, "", 10.5)
        for b in items:
            self.pdf.multi_cell(0, 5.2, self.t(f"•  {b}"), new_x="LMARGIN", new_y="NEXT")
            self.pdf.ln(0.6)

    def table(self, df: pl.DataFrame, size: float = 9) -> None:
        if df is None or df.is_empty():
            self.p("(no rows)")
            return
        self.pdf.set_font(self.family, "", size)
        data = [list(df.columns)] + [[self.t(_cell(v)) for v in r] for r in df.iter_rows()]
        # a column is as wide as its widest cell in this font (headers, in bold, may wrap at
        # a space), between 12 and 75 mm: figures stay on one line, long text wraps. When
        # the columns overflow the page, only the wide (text) columns give up the excess:
        # fpdf scales every column alike otherwise, and figures would wrap.
        def mm(text: str, bold: bool = False) -> float:
            self.pdf.set_font(self.family, "B" if bold else "", size)
            return self.pdf.get_string_width(text) + 4

        widths = [min(75.0, max(12.0, max(mm(w, True) for w in str(data[0][i]).split() or [""]),
                                max(mm(str(row[i])) for row in data[1:])))
                  for i in range(len(data[0]))]
        self.pdf.set_font(self.family, "", size)
        excess = sum(widths) - self.pdf.epw
        slack = {i: w - 30 for i, w in enumerate(widths) if w > 30}
        if excess > 0 and slack:
            share = min(1.0, excess / sum(slack.values()))
            widths = [w - share * slack.get(i, 0.0) for i, w in enumerate(widths)]
        widths = tuple(widths)
        with self.pdf.table(text_align="LEFT", line_height=size * 0.55, first_row_as_headings=True,
                            col_widths=widths) as tbl:
            for r in data:
                row = tbl.row()
                for v in r:
                    row.cell(self.t(v))
        self.pdf.ln(2)

    def image(self, png: bytes, width_mm: float = 250) -> None:
        import io

        if self.pdf.get_y() > 120:
            self.pdf.add_page()
        self.pdf.image(io.BytesIO(png), w=width_mm)
        self.pdf.ln(2)

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def plain_title(fig) -> str:
    """A figure's title as plain text: its subtitle after " · ", no markup ("" without one)."""
    text = getattr(getattr(getattr(fig, "layout", None), "title", None), "text", None) or ""
    return " ".join(re.sub(r"<[^>]+>", " ", text.replace("<br>", " · ")).split()).replace(" · ·", " ·")


# under every scorecard that shows a change beside rounded values ("82.4% → 74.5%: −7.8 pts")
CHANGE_NOTE = ("Changes are computed from unrounded values: a change can differ in its last digit from the "
               "difference of the rounded figures.")


def qbr_pdf(quarter: str, scorecard_table: pl.DataFrame, bullets: list[str],
            figures: list[tuple[str, go.Figure]] | None = None,
            tables: list[tuple[str, pl.DataFrame]] | None = None, subtitle: str = "",
            images: bool = True) -> bytes:
    """The QBR as a PDF: scorecard table, summary bullets, charts as images, numbers as tables
    (`figures`: (heading or None, figure): None when the chart's title says it; `tables`: (name,
    frame) or (name, frame, notes), the notes printed under the table)."""
    doc = _PDF(f"KPI Bridge QBR {quarter}")
    doc.h(f"KPI Bridge — Quarterly business review {quarter}", 20)
    if subtitle:
        doc.p(subtitle, 9.5)
    doc.pdf.ln(2)
    doc.h(f"L6 scorecard {quarter}", 14)
    doc.table(scorecard_table, 9.5)
    doc.p(CHANGE_NOTE, 8)
    doc.h("Summary", 14)
    doc.bullets(bullets)
    for name, fig in figures or []:
        # `name` None: the chart's image carries its own title (a heading above it said it twice);
        # without the image, its title in words heads the page
        doc.pdf.add_page()
        heading = name or plain_title(fig)
        if not images:
            doc.h(heading, 13)
            continue
        try:
            image = png_bytes(fig, width=1100, scale=2)
        except Exception as exc:  # no browser for kaleido: say so, keep the tables
            doc.h(heading, 13)
            doc.p(f"(chart image unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
            continue
        if name:
            doc.h(name, 13)
        doc.image(image)
    for name, df, *notes in tables or []:
        if doc.pdf.get_y() > 150:
            doc.pdf.add_page()
        doc.h(name, 13)
        doc.table(df)
        if notes and notes[0]:
            doc.pdf.set_font(doc.family, "B", 9.5)
            doc.pdf.multi_cell(0, 5, doc.t("Notes"), new_x="LMARGIN", new_y="NEXT")
            doc.pdf.set_font(doc.family, "", 9)
            for n in notes[0]:
                doc.pdf.multi_cell(0, 4.6, doc.t(f"•  {n}"), new_x="LMARGIN", new_y="NEXT", align="L")
                doc.pdf.ln(0.4)
    doc.p(f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · metric contract "
          f"{config.metric_contract()['version']}", 8)
    return doc.bytes()
