"""Hand-computed L6 values (SPEC §3) on tiny sources, through the CLI (SPEC §7).

Independent check: every expected value below is worked out by hand from SPEC §3;
the arithmetic is in the comments. Every subprocess runs with TZ=America/New_York so
that a naive timestamp read as local time instead of UTC shows up as a wrong period.

Fixtures (each ingested once with `python -m pipelines run`; the runs and the `l6`
queries start in the background when this module is imported, see helpers_source):
  core   - verdict tiers, valid rule, HR, TTA quantiles, HitL-F, CPVO + infra (Parquet)
  offs   - timestamps written with UTC offsets at month/quarter/year boundaries (CSV)
  naive  - naive timestamps (CSV) at boundaries + ISO weeks + `--by all` spans
  rd     - Retention Delta: >= 30 users per group, generated with a simple pattern
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_source import (REPO_ROOT, Prepared, by_period, interaction,  # noqa: E402
                            scratch_dir, user, write_source)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

NY = {"TZ": "America/New_York"}
FA, FB = "code_assistant", "support_assistant"
approx = lambda v: pytest.approx(v, rel=1e-9, abs=1e-12)  # noqa: E731


def _check(row: dict, **expected) -> None:
    """Compare one L6 JSON row against expected values (None = JSON null)."""
    for k, v in expected.items():
        got = row[k]
        if v is None:
            assert got is None, f"{row['period_start']} {k}: expected null, got {got!r}"
        elif isinstance(v, int) and not isinstance(v, bool) and k == "interactions":
            assert got == v, f"{row['period_start']} {k}: expected {v}, got {got!r}"
        else:
            assert got is not None, f"{row['period_start']} {k}: expected {v}, got null"
            assert got == approx(v), f"{row['period_start']} {k}: expected {v}, got {got!r}"


# ---------------------------------------------------------------------------------
# core fixture: 2026-02-10 (Tuesday; its ISO week starts Monday 2026-02-09)
# ---------------------------------------------------------------------------------
D = "2026-02-10"


def _core_tables() -> dict:
    def ia(iid, hhmm, **kw):
        kw.setdefault("feature", FA)
        kw.setdefault("domain", "code")
        return interaction(iid, f"{D} {hhmm}:00", kw.pop("user_id", "u1"), **kw)

    interactions = [
        # i01: tier1 says not hallucinated (09:00), tier2 says hallucinated (08:00):
        #      tier 2 overrides tier 1 even though it is older -> final = hallucinated.
        ia("i01", "07:00", outcome="completed", latency_ms=100, verification_ms=100),
        # i02: tier1 hallucinated (10:00), tier2 not (09:00) -> final = not hallucinated.
        ia("i02", "07:05", outcome="completed", latency_ms=1000, verification_ms=2000),
        # i03: tier1 hallucinated 09:00, tier1 NOT hallucinated 11:00 -> latest tier 1
        #      wins -> not hallucinated.
        ia("i03", "07:10", outcome="completed", latency_ms=500, verification_ms=500),
        # i04: tier2 not 09:00, tier2 hallucinated 12:00, tier1 not 13:00 -> latest
        #      tier-2 verdict -> hallucinated.
        ia("i04", "07:15", outcome="completed", latency_ms=50, verification_ms=50),
        # i05: no verdict at all; completed; never verified (verification_ms null).
        ia("i05", "07:20", outcome="completed", latency_ms=2000, verification_ms=None),
        # i06: only a tier-3 verdict (hallucinated) -> no final verdict (tier 3 never mixed in).
        ia("i06", "07:25", outcome="completed", latency_ms=4000, verification_ms=6000),
        # i07: corrected, tier1 not hallucinated.
        ia("i07", "07:30", outcome="corrected", latency_ms=300, verification_ms=300),
        ia("i08", "07:35", outcome="fallback"),
        # i09: escalated, tier1 hallucinated; its interaction is at 23:00, one of its
        #      interventions happens the next day (still counted with the interaction).
        ia("i09", "23:00", outcome="escalated"),
        ia("i10", "07:45", outcome="abandoned"),
        ia("i11", "07:50", outcome="completed", latency_ms=1500, verification_ms=2500),
        ia("i12", "07:55", outcome="completed", latency_ms=3000, verification_ms=3000),
        # i13: tier1 not hallucinated + tier3 hallucinated -> final = tier 1 = not.
        ia("i13", "08:00", outcome="completed", latency_ms=2000, verification_ms=0),
        # support_assistant / billing, user u2
        ia("j1", "09:00", outcome="completed", feature=FB, domain="billing", user_id="u2",
           cost_usd=0.002),
        ia("j2", "09:05", outcome="fallback", feature=FB, domain="billing", user_id="u2",
           cost_usd=0.002),
        # next day, alone: two tier-2 verdicts at the very same ts, one each way
        # -> reading (c): hallucinated wins.
        interaction("i14", "2026-02-11 10:00:00", "u1", feature=FA, domain="code",
                    outcome="completed", latency_ms=1000, verification_ms=1000),
    ]

    def adj(iid, tier, h, hhmm, day=D):
        return {"interaction_id": iid, "tier": tier, "hallucinated": h,
                "ts": f"{day} {hhmm}:00"}

    adjudications = [
        adj("i01", 1, False, "09:00"), adj("i01", 2, True, "08:00"),
        adj("i02", 1, True, "10:00"), adj("i02", 2, False, "09:00"),
        adj("i03", 1, True, "09:00"), adj("i03", 1, False, "11:00"),
        adj("i04", 2, False, "09:00"), adj("i04", 2, True, "12:00"), adj("i04", 1, False, "13:00"),
        adj("i06", 3, True, "09:00"),
        adj("i07", 1, False, "09:00"),
        adj("i09", 1, True, "23:30"),
        adj("i13", 1, False, "09:00"), adj("i13", 3, True, "10:00"),
        adj("i14", 2, False, "11:00", day="2026-02-11"),
        adj("i14", 2, True, "11:00", day="2026-02-11"),
    ]

    def itv(vid, iid, kind, ts=f"{D} 12:00:00"):
        return {"intervention_id": vid, "interaction_id": iid, "ts": ts, "kind": kind,
                "duration_s": 30.0}

    interventions = [
        itv("v1", "i07", "edit"), itv("v2", "i07", "review"), itv("v3", "i07", "override"),
        itv("v4", "i01", "edit"), itv("v5", "i01", "review"),
        itv("v6", "i09", "escalation", ts="2026-02-11 01:00:00"),
        itv("v7", "j2", "edit"),
    ]
    infra = [
        # Monday of the same ISO week, no interactions that day
        {"date": "2026-02-09", "feature": FA, "cost_usd": 1.0},
        {"date": D, "feature": FA, "cost_usd": 0.07},
        {"date": D, "feature": FB, "cost_usd": 0.5},
        {"date": "2026-02-11", "feature": FA, "cost_usd": 0.03},
        {"date": "2026-02-11", "feature": FB, "cost_usd": 0.2},
    ]
    return {
        "users": [user("u1", "pro"), user("u2", "free")],
        "interactions": interactions,
        "adjudications": adjudications,
        "interventions": interventions,
        "user_activity": [{"user_id": "u1", "activity_date": "2026-02-09"},
                          {"user_id": "u2", "activity_date": "2026-02-09"}],
        "infra_costs": infra,
    }


def _prepare(name: str, tables: dict, queries, csv=()) -> Prepared:
    tmp = scratch_dir(name)
    src = write_source(tmp / "src", tables, csv=csv)
    return Prepared(src, tmp / "wh.duckdb", queries)


CORE = _prepare("core", _core_tables(), [
    ("day", FA), ("day",), ("day", None, "billing"), ("week",), ("all", FA)])


@pytest.fixture(scope="module")
def core_db() -> Prepared:
    return CORE.check_run(0)


def test_core_day_feature(core_db):
    rows = by_period(core_db.l6("day", feature=FA))
    assert sorted(rows) == ["2026-02-10", "2026-02-11"]
    # code_assistant on 2026-02-10: i01..i13 = 13 interactions
    # completed: i01 i02 i03 i04 i05 i06 i11 i12 i13 = 9          -> TCR 9/13
    # final verdict: i01 H (t2 beats t1), i02 not (t2 beats t1), i03 not (latest t1),
    #   i04 H (latest t2), i07 not, i09 H, i13 not (t1; t3 ignored); i05 i06 i08 i10 i11
    #   i12 none (i06 has only tier 3) -> adjudicated 7, hallucinated 3 -> HR 3/7
    # valid = completed and not hallucinated (no verdict = not hallucinated):
    #   i02 i03 i05 i06 i11 i12 i13 = 7
    # TTA over valid with verification: i02 (1000+2000)/1000=3, i03 1, i06 10, i11 4,
    #   i12 6, i13 2 (i05 null verification excluded; i01/i04 0.2/0.1 s hallucinated,
    #   i07 0.6 s not completed -> excluded). sorted [1,2,3,4,6,10], n=6
    #   p50: pos 0.5*5=2.5 -> 3 + 0.5*(4-3) = 3.5 ; p90: pos 0.9*5=4.5 -> 6 + 0.5*(10-6) = 8.0
    # HitL: v1..v6 (v6 is on 02-11 but its interaction i09 is on 02-10) = 6 -> 600/13
    # CPVO: 13 * 0.001 + infra code_assistant 02-10 (0.07) = 0.083 over 7 valid
    # RΔ: 1 user -> insufficient -> null
    _check(rows["2026-02-10"], interactions=13, tcr=9 / 13, hr=3 / 7, tta_p50_s=3.5,
           tta_p90_s=8.0, hitl_per_100=600 / 13, cpvo_usd=0.083 / 7, retention_delta_pts=None)
    # 2026-02-11: i14 alone, two tier-2 verdicts at the same ts -> hallucinated wins
    #   (reading (c)) -> HR 1/1, valid 0 -> TTA null, CPVO null (0 valid outputs)
    _check(rows["2026-02-11"], interactions=1, tcr=1.0, hr=1.0, tta_p50_s=None,
           tta_p90_s=None, hitl_per_100=0.0, cpvo_usd=None, retention_delta_pts=None)


def test_core_day_all_features(core_db):
    rows = by_period(core_db.l6("day"))
    # 2026-02-10, all features: 13 + j1 + j2 = 15 interactions; completed 9 + j1 = 10
    # adjudicated 7 (j1 j2 none), hallucinated 3; valid 7 + j1 = 8; TTA unchanged (j1 has
    # no verification); interventions 6 + v7 = 7 -> 700/15
    # CPVO: costs 0.013 + 2*0.002 = 0.017, infra of all features on 02-10 0.07 + 0.5
    #   -> 0.587 / 8
    _check(rows["2026-02-10"], interactions=15, tcr=10 / 15, hr=3 / 7, tta_p50_s=3.5,
           tta_p90_s=8.0, hitl_per_100=700 / 15, cpvo_usd=0.587 / 8)


def test_core_domain_slice(core_db):
    rows = by_period(core_db.l6("day", domain="billing"))
    assert sorted(rows) == ["2026-02-10"]
    # billing = j1 (completed, no verdict, valid) + j2 (fallback); no adjudication -> HR
    # null; no verification -> TTA null; 1 intervention (v7) / 2 -> 50
    # CPVO, reading (a): a domain slice does not filter on feature, so the infra of all
    #   features on 02-10 counts: (0.004 + 0.07 + 0.5) / 1 valid = 0.574
    _check(rows["2026-02-10"], interactions=2, tcr=0.5, hr=None, tta_p50_s=None,
           tta_p90_s=None, hitl_per_100=50.0, cpvo_usd=0.574)


def test_core_week_starts_monday_and_counts_whole_week_infra(core_db):
    rows = by_period(core_db.l6("week"))
    # 02-10 (Tue) and 02-11 (Wed) are both in the ISO week starting Monday 2026-02-09
    assert sorted(rows) == ["2026-02-09"]
    # 16 interactions; completed 10 + i14 = 11; adjudicated 8, hallucinated 4 -> 0.5
    # valid 8 (i14 hallucinated); TTA: i14 is not valid -> same values 3.5 / 8.0
    # interventions 7 -> 700/16
    # CPVO: P is the whole week 02-09..02-15: costs 16 interactions = 0.014 + 0.004 = 0.018
    #   infra 1.0 (02-09, a day with no interactions but in P) + 0.07 + 0.5 + 0.03 + 0.2
    #   = 1.8 -> 1.818 / 8
    _check(rows["2026-02-09"], interactions=16, tcr=11 / 16, hr=0.5, tta_p50_s=3.5,
           tta_p90_s=8.0, hitl_per_100=700 / 16, cpvo_usd=1.818 / 8)


def test_core_all_feature(core_db):
    rows = core_db.l6("all", feature=FA)
    assert len(rows) == 1
    # `all` spans the first to the last date of the selected interactions: 02-10..02-11
    # (infra on 02-09 is outside). period_start = first date.
    # code_assistant: 14 interactions, completed 10, adjudicated 8, hallucinated 4,
    # valid 7, interventions 6 -> 600/14,
    # CPVO (0.014 + 0.07 + 0.03) / 7 = 0.114 / 7   (support_assistant infra excluded)
    _check(by_period(rows)["2026-02-10"], interactions=14, tcr=10 / 14, hr=0.5,
           tta_p50_s=3.5, tta_p90_s=8.0, hitl_per_100=600 / 14, cpvo_usd=0.114 / 7)


# ---------------------------------------------------------------------------------
# undated verdicts: an adjudication without ts ranks below any dated verdict of its tier
# ---------------------------------------------------------------------------------
def _undated_tables() -> dict:
    day = "2026-03-03"

    def adj(iid, tier, h, ts=None):
        return {"interaction_id": iid, "tier": tier, "hallucinated": h, "ts": ts}

    return {
        "users": [user("u1")],
        "interactions": [interaction(f"n{k}", f"{day} 10:0{k}:00", "u1", outcome="completed",
                                     latency_ms=1000, verification_ms=1000) for k in range(1, 5)],
        "adjudications": [
            adj("n1", 1, True),                                              # only verdict, undated
            adj("n2", 1, True), adj("n2", 1, False, f"{day} 11:00:00"),      # the dated one wins
            adj("n3", 2, True), adj("n3", 1, False, f"{day} 11:00:00"),      # tier 2 beats tier 1
            adj("n4", 2, False), adj("n4", 2, True),                         # a tie: hallucinated wins
        ],
        "interventions": [{"intervention_id": "v1", "interaction_id": "n1", "ts": f"{day} 12:00:00",
                           "kind": "edit", "duration_s": 5.0}],
        "user_activity": [{"user_id": "u1", "activity_date": day}],
    }


UNDATED = _prepare("undated", _undated_tables(), [("day",)])


def test_undated_verdicts():
    rows = by_period(UNDATED.check_run(0).l6("day"))
    # final verdicts: n1 H (its only tier-1 verdict), n2 not (the dated tier-1 verdict
    # beats the undated one), n3 H (tier 2, undated, beats tier 1), n4 H (two undated
    # tier-2 verdicts: hallucinated wins) -> HR 3/4; valid = n2 only -> TTA 2 s
    _check(rows["2026-03-03"], interactions=4, tcr=1.0, hr=3 / 4, tta_p50_s=2.0, tta_p90_s=2.0)


# ---------------------------------------------------------------------------------
# offs fixture: interactions.csv with explicit UTC offsets around boundaries
# ---------------------------------------------------------------------------------
OFFSET_TS = {
    # written                       UTC instant            month   quarter
    "k01": "2025-12-31T20:00:00-05:00",  # 2026-01-01 01:00  2026-01  2026Q1 (year boundary)
    "k02": "2026-04-01T00:30:00+02:00",  # 2026-03-31 22:30  2026-03  2026Q1
    "k03": "2026-03-15T12:00:00+00:00",  # 2026-03-15 12:00  2026-03  2026Q1
    "k04": "2026-03-31T23:30:00-02:00",  # 2026-04-01 01:30  2026-04  2026Q2
    "k05": "2026-04-10T10:00:00+01:00",  # 2026-04-10 09:00  2026-04
    "k06": "2026-04-30T23:00:00-05:00",  # 2026-05-01 04:00  2026-05  2026Q2
    "k07": "2026-05-01T01:00:00+03:00",  # 2026-04-30 22:00  2026-04
    "k08": "2026-07-01T01:00:00+05:00",  # 2026-06-30 20:00  2026-06  2026Q2
    "k09": "2026-06-30T22:00:00-03:00",  # 2026-07-01 01:00  2026-07  2026Q3
    "k10": "2026-09-30T21:30:00-04:00",  # 2026-10-01 01:30  2026-10  2026Q4
}


OFFS = _prepare(
    "offs",
    {"users": [user("u1")],
     "interactions": [interaction(k, ts, "u1", outcome="completed")
                      for k, ts in OFFSET_TS.items()],
     # so that no table is empty (empty tables: see test_bad_input.test_empty_tables_accepted)
     "adjudications": [{"interaction_id": "k03", "tier": 1, "hallucinated": False,
                        "ts": "2026-03-15 13:00:00"}],
     "interventions": [{"intervention_id": "v1", "interaction_id": "k03",
                        "ts": "2026-03-15 13:00:00", "kind": "edit", "duration_s": 5.0}],
     "user_activity": [{"user_id": "u1", "activity_date": "2026-03-15"}]},
    [("month",), ("quarter",), ("day",)], csv={"interactions"})


@pytest.fixture(scope="module")
def offs_db() -> Prepared:
    return OFFS.check_run(0)


def test_offsets_month(offs_db):
    rows = by_period(offs_db.l6("month"))
    counts = {k: v["interactions"] for k, v in rows.items()}
    # Jan: k01 | Mar: k02 k03 | Apr: k04 k05 k07 | May: k06 | Jun: k08 | Jul: k09 | Oct: k10
    assert counts == {"2026-01-01": 1, "2026-03-01": 2, "2026-04-01": 3, "2026-05-01": 1,
                      "2026-06-01": 1, "2026-07-01": 1, "2026-10-01": 1}


def test_offsets_quarter(offs_db):
    rows = by_period(offs_db.l6("quarter"))
    counts = {k: v["interactions"] for k, v in rows.items()}
    # Q1: k01 k02 k03 = 3 | Q2: k04 k05 k06 k07 k08 = 5 | Q3: k09 | Q4: k10
    assert counts == {"2026-01-01": 3, "2026-04-01": 5, "2026-07-01": 1, "2026-10-01": 1}


def test_offsets_day(offs_db):
    rows = by_period(offs_db.l6("day"))
    assert sorted(rows) == ["2026-01-01", "2026-03-15", "2026-03-31", "2026-04-01",
                            "2026-04-10", "2026-04-30", "2026-05-01", "2026-06-30",
                            "2026-07-01", "2026-10-01"]


# ---------------------------------------------------------------------------------
# tzparq fixture: Parquet interactions whose `ts` is a zone-aware timestamp
# (TIMESTAMP WITH TIME ZONE, as pandas/pyarrow export tz-aware columns). SPEC §2:
# timestamps are UTC instants; only a timestamp WITHOUT a zone needs the "read as UTC"
# rule, so a zoned one is valid input and its instant decides the UTC date.
# ---------------------------------------------------------------------------------
def _tzparq() -> Prepared:
    import datetime as dt  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415

    from helpers_source import SCHEMAS, write_table  # noqa: PLC0415
    m2 = dt.timezone(dt.timedelta(hours=-2))
    inter = [
        # 2026-03-31 23:30 at -02:00 = 2026-04-01 01:30 UTC -> April
        interaction("z1", dt.datetime(2026, 3, 31, 23, 30, tzinfo=m2), "u1"),
        # 2026-03-31 20:30 at -02:00 = 2026-03-31 22:30 UTC -> March
        interaction("z2", dt.datetime(2026, 3, 31, 20, 30, tzinfo=m2), "u1"),
        interaction("z3", dt.datetime(2026, 4, 15, 12, 0, tzinfo=m2), "u1"),
    ]
    tmp = scratch_dir("tzparq")
    src = write_source(tmp / "src", {
        "users": [user("u1")], "interactions": inter,
        "adjudications": [{"interaction_id": "z3", "tier": 1, "hallucinated": False,
                           "ts": "2026-04-15 20:00:00"}],
        "interventions": [{"intervention_id": "v1", "interaction_id": "z3",
                           "ts": "2026-04-15 20:00:00", "kind": "edit", "duration_s": 5.0}],
        "user_activity": [{"user_id": "u1", "activity_date": "2026-03-30"}]})
    schema = [(c, pa.timestamp("us", tz="America/Sao_Paulo") if c == "ts" else t)
              for c, t in SCHEMAS["interactions"]]
    write_table(src, "interactions", inter, schema=schema)
    return Prepared(src, tmp / "wh.duckdb", [("month",)], env_extra=NY)


TZPARQ = _tzparq()


def test_zoned_parquet_timestamps():
    TZPARQ.check_run(0)
    counts = {k: v["interactions"] for k, v in by_period(TZPARQ.l6("month")).items()}
    assert counts == {"2026-03-01": 1, "2026-04-01": 2}


# ---------------------------------------------------------------------------------
# naive fixture: naive timestamps (= UTC) in CSV, ISO weeks, `all` spans, infra
# ---------------------------------------------------------------------------------
NAIVE_TS = {
    # written (naive = UTC)          UTC date     weekday  week (Mon)   if read as NY time
    "n1": ("2025-12-31 21:00:00", FB),  # 2025-12-31  Wed  2025-12-29   -> 2026-01-01
    "n2": ("2026-02-08 23:00:00", FA),  # 2026-02-08  Sun  2026-02-02   -> 02-09 (next week)
    "n3": ("2026-02-09 00:30:00", FA),  # 2026-02-09  Mon  2026-02-09
    "n4": ("2026-02-15 22:00:00", FA),  # 2026-02-15  Sun  2026-02-09   -> 02-16
    "n5": ("2026-02-16 08:00:00", FA),  # 2026-02-16  Mon  2026-02-16
    "n6": ("2026-03-31 23:30:00", FB),  # 2026-03-31  Tue  2026-03-30   -> April / Q2
    "n7": ("2026-06-30 22:00:00", FB),  # 2026-06-30  Tue  2026-06-29   -> July / Q3
}
NAIVE_INFRA = [
    ("2026-02-07", FA, 10.0),   # Sat, week 02-02, before the code_assistant span
    ("2026-02-08", FA, 0.1),    # Sun, week 02-02, first code_assistant date
    ("2026-02-10", FB, 3.0),    # Tue, week 02-09
    ("2026-02-12", FA, 0.2),    # Thu, week 02-09, a date without interactions
    ("2026-02-16", FA, 0.4),    # Mon, week 02-16, last code_assistant date
    ("2026-02-17", FA, 20.0),   # Tue, week 02-16, after the code_assistant span
]


NAIVE = _prepare(
    "naive",
    {"users": [user("u1")],
     "interactions": [interaction(k, ts, "u1", feature=f, outcome="completed", cost_usd=0.001)
                      for k, (ts, f) in NAIVE_TS.items()],
     "infra_costs": [{"date": d, "feature": f, "cost_usd": c} for d, f, c in NAIVE_INFRA],
     # n1 (2025-12-31): one tier-1 "not hallucinated" verdict and one intervention
     "adjudications": [{"interaction_id": "n1", "tier": 1, "hallucinated": False,
                        "ts": "2026-01-01 10:00:00"}],
     "interventions": [{"intervention_id": "v1", "interaction_id": "n1",
                        "ts": "2026-01-01 10:00:00", "kind": "review", "duration_s": 5.0}]},
    [("month",), ("quarter",), ("day",), ("week",), ("all",), ("all", FA)],
    csv={"interactions"})


@pytest.fixture(scope="module")
def naive_db() -> Prepared:
    return NAIVE.check_run(0)


def test_naive_month_quarter_day(naive_db):
    month = {k: v["interactions"] for k, v in by_period(naive_db.l6("month")).items()}
    assert month == {"2025-12-01": 1, "2026-02-01": 4, "2026-03-01": 1, "2026-06-01": 1}
    quarter = {k: v["interactions"] for k, v in by_period(naive_db.l6("quarter")).items()}
    assert quarter == {"2025-10-01": 1, "2026-01-01": 5, "2026-04-01": 1}
    day = by_period(naive_db.l6("day"))
    assert sorted(day) == ["2025-12-31", "2026-02-08", "2026-02-09", "2026-02-15",
                           "2026-02-16", "2026-03-31", "2026-06-30"]


def test_naive_weeks_start_monday(naive_db):
    rows = by_period(naive_db.l6("week"))
    assert sorted(rows) == ["2025-12-29", "2026-02-02", "2026-02-09", "2026-02-16",
                            "2026-03-30", "2026-06-29"]
    # every interaction is completed, the only verdict (n1) is "not hallucinated" -> all
    # valid, cost 0.001 each
    # week 02-02: n2; infra in 02-02..02-08: 10.0 + 0.1 -> (0.001 + 10.1) / 1
    _check(rows["2026-02-02"], interactions=1, tcr=1.0, cpvo_usd=10.101)
    # week 02-09: n3 n4; infra in 02-09..02-15: 3.0 (FB) + 0.2 (FA) -> (0.002 + 3.2) / 2
    _check(rows["2026-02-09"], interactions=2, tcr=1.0, cpvo_usd=3.202 / 2)
    # week 02-16: n5; infra in 02-16..02-22: 0.4 + 20.0 -> 20.401
    _check(rows["2026-02-16"], interactions=1, cpvo_usd=20.401)
    # week 2026-03-30 / 2026-06-29: no infra -> 0.001 / 1
    _check(rows["2026-03-30"], interactions=1, cpvo_usd=0.001)


def test_naive_all(naive_db):
    rows = naive_db.l6("all")
    # span 2025-12-31 .. 2026-06-30: every infra row is inside -> 33.7; costs 0.007; 7 valid
    # HR: 1 adjudicated (n1, not hallucinated) -> 0/1 = 0; HitL: 1 intervention -> 100/7
    assert len(rows) == 1
    _check(by_period(rows)["2025-12-31"], interactions=7, tcr=1.0, hr=0.0,
           tta_p50_s=None, hitl_per_100=100 / 7, cpvo_usd=33.707 / 7,
           retention_delta_pts=None)


def test_naive_all_feature_span(naive_db):
    rows = naive_db.l6("all", feature=FA)
    # code_assistant interactions n2..n5: span 2026-02-08 .. 2026-02-16
    # infra of code_assistant inside the span: 0.1 + 0.2 + 0.4 = 0.7 (02-07 and 02-17
    # are outside, the FB row is another feature) -> (0.004 + 0.7) / 4 = 0.176
    assert len(rows) == 1
    _check(by_period(rows)["2026-02-08"], interactions=4, cpvo_usd=0.176)


# ---------------------------------------------------------------------------------
# rd fixture: Retention Delta
# ---------------------------------------------------------------------------------
# Users (segment): a01-a30 pro, b01-b30 free, n01-n40 pro, m01-m30 free,
#                  c01-c35 enterprise, e01-e10 free, f01-f03 free.
# Interactions (12:00 UTC, all completed):
#   a01-a10  FA on 01-05 and 01-07   (no user_activity rows at all)
#   a11-a30  FA on 01-05
#   b01-b15  FB on 01-06
#   b16-b30  FB on 01-09
#   c01-c29  FA on 01-13 ; c30 FB on 01-13 ; c31-c35 FA on 01-15
# user_activity:
#   a11-a20 01-08 | b01-b15 01-06, 01-12 | b16-b30 01-05
#   n01-n10 01-06, 01-10 | n11-n15 01-06, 01-13 | n16-n20 01-06, 01-14 | n21-n40 01-06
#   m01-m06 01-07, 01-09 | m07-m30 01-07
#   c01-c12 01-16 | c31-c35 01-16 | e01-e05 01-14, 01-21 | e06-e10 01-14 | f01-f03 01-16
# Last active date in the data L = 2026-01-21 (e01-e05) -> anchors must be <= 01-14.
# Weeks: W1 = 2026-01-05..01-11, W2 = 2026-01-12..01-18.

def _ids(p, a, b):
    return [f"{p}{i:02d}" for i in range(a, b + 1)]


def _rd_tables() -> dict:
    users, inter, act = [], [], []
    seg = {"a": "pro", "b": "free", "n": "pro", "m": "free", "c": "enterprise",
           "e": "free", "f": "free"}
    size = {"a": 30, "b": 30, "n": 40, "m": 30, "c": 35, "e": 10, "f": 3}
    for p, n in size.items():
        for u in _ids(p, 1, n):
            users.append(user(u, seg[p], "treatment" if p in "abnm" else None))
    k = 0

    def ix(u, day, feat):
        nonlocal k
        k += 1
        inter.append(interaction(f"x{k:04d}", f"2026-01-{day:02d} 12:00:00", u,
                                 feature=feat, outcome="completed"))

    def ac(u, *days):
        act.extend({"user_id": u, "activity_date": f"2026-01-{d:02d}"} for d in days)

    for u in _ids("a", 1, 10):
        ix(u, 5, FA); ix(u, 7, FA)
    for u in _ids("a", 11, 30):
        ix(u, 5, FA)
    for u in _ids("a", 11, 20):
        ac(u, 8)
    for u in _ids("b", 1, 15):
        ix(u, 6, FB); ac(u, 6, 12)
    for u in _ids("b", 16, 30):
        ix(u, 9, FB); ac(u, 5)
    for u in _ids("c", 1, 29):
        ix(u, 13, FA)
    ix("c30", 13, FB)
    for u in _ids("c", 31, 35):
        ix(u, 15, FA); ac(u, 16)
    for u in _ids("c", 1, 12):
        ac(u, 16)
    for u in _ids("n", 1, 10):
        ac(u, 6, 10)
    for u in _ids("n", 11, 15):
        ac(u, 6, 13)
    for u in _ids("n", 16, 20):
        ac(u, 6, 14)
    for u in _ids("n", 21, 40):
        ac(u, 6)
    for u in _ids("m", 1, 6):
        ac(u, 7, 9)
    for u in _ids("m", 7, 30):
        ac(u, 7)
    for u in _ids("e", 1, 5):
        ac(u, 14, 21)
    for u in _ids("e", 6, 10):
        ac(u, 14)
    for u in _ids("f", 1, 3):
        ac(u, 16)
    # one verdict and one intervention so no table is empty (they do not touch RΔ)
    adj = [{"interaction_id": "x0001", "tier": 1, "hallucinated": False,
            "ts": "2026-01-05 13:00:00"}]
    itv = [{"intervention_id": "v1", "interaction_id": "x0001", "ts": "2026-01-05 13:00:00",
            "kind": "edit", "duration_s": 5.0}]
    return {"users": users, "interactions": inter, "user_activity": act,
            "adjudications": adj, "interventions": itv}


RD = _prepare("rd", _rd_tables(), [("week",), ("week", FA), ("week", FB), ("month",), ("all",)])


@pytest.fixture(scope="module")
def rd_db() -> Prepared:
    return RD.check_run(0)


def test_rd_week_unsliced(rd_db):
    rows = by_period(rd_db.l6("week"))
    assert sorted(rows) == ["2026-01-05", "2026-01-12"]
    # W1 AI users (interaction in W1): a01-a30 anchor 01-05, b01-b15 anchor 01-06,
    #   b16-b30 anchor 01-09 (first INTERACTION date, not their 01-05 activity). All <= 01-14.
    #   retained (active in anchor+1..anchor+7): a01-a10 (interaction 01-07, only via
    #   interactions), a11-a20 (01-08), b01-b15 (01-12); a21-a30 and b16-b30 no.
    #   -> 35 / 60
    # W1 non-AI (active in W1, no interaction in W1): n01-n40 anchor 01-06, m01-m30 01-07
    #   retained: n01-n10 (01-10), n11-n15 (01-13 = anchor+7, inclusive), m01-m06 (01-09);
    #   n16-n20 (01-14 = anchor+8) no -> 21 / 70
    # RΔ = 100 * (35/60 - 21/70) = 100 * 17/60 = 28.333...
    _check(rows["2026-01-05"], interactions=70, retention_delta_pts=100 * (35 / 60 - 21 / 70))
    # W2 AI: c01-c30 anchor 01-13 (eligible: 01-20 <= 01-21); c31-c35 anchor 01-15
    #   -> 01-22 > L -> excluded. retained c01-c12 (01-16) -> 12/30 = 0.4  (n = 30: a number)
    # W2 non-AI: b01-b15 (01-12), n11-n15 (01-13), n16-n20 (01-14), e01-e10 (01-14);
    #   f01-f03 anchor 01-16 excluded. retained e01-e05 (01-21 = 01-14+7) -> 5/35
    # RΔ = 100 * (12/30 - 5/35) = 100 * 9/35 = 25.714...
    _check(rows["2026-01-12"], interactions=35, retention_delta_pts=100 * (12 / 30 - 5 / 35))


def test_rd_week_feature_slices(rd_db):
    fa = by_period(rd_db.l6("week", feature=FA))
    # W1 FA: AI a01-a30: 20/30. Non-AI = active in W1 with no FA interaction in W1:
    #   b01-b15 (anchor 01-06, retained via 01-12), b16-b30 (anchor 01-05 = first ACTIVE
    #   date; their FB interaction on 01-09 is +4 -> retained), n 15/40, m 6/30
    #   -> (15 + 15 + 15 + 6) / 100 = 0.51 ; RΔ = 100 * (2/3 - 0.51) = 15.666...
    _check(fa["2026-01-05"], interactions=40, retention_delta_pts=100 * (20 / 30 - 51 / 100))
    # W2 FA: AI c01-c29 = 29 eligible (c31-c35 excluded by the end rule) -> < 30 -> null
    #   (the unsliced W2 has exactly 30 AI users and gives a number: 29 vs 30)
    _check(fa["2026-01-12"], interactions=34, retention_delta_pts=None)
    fb = by_period(rd_db.l6("week", feature=FB))
    # W1 FB: AI b01-b30 anchored at first FB interaction: b01-b15 retained, b16-b30 not
    #   -> 15/30. Non-AI: a01-a30 (anchor 01-05; a01-a20 retained) 20, n 15/40, m 6/30
    #   -> 41/100 ; RΔ = 100 * (0.5 - 0.41) = 9.0
    _check(fb["2026-01-05"], interactions=30, retention_delta_pts=100 * (15 / 30 - 41 / 100))
    # W2 FB: one AI user (c30) -> null
    _check(fb["2026-01-12"], interactions=1, retention_delta_pts=None)


def test_rd_month_and_all(rd_db):
    # January (and `all` = 01-05..01-15, the same sets of users):
    # AI: a (anchor 01-05) 20/30, b01-b15 15/15, b16-b30 0/15, c01-c30 12/30,
    #   c31-c35 excluded -> 47 / 90
    # non-AI: n 15/40, m 6/30, e01-e10 (anchor 01-14) 5/10, f excluded (anchor 01-16;
    #   and for `all` not even active in 01-05..01-15) -> 26 / 80
    expected = 100 * (47 / 90 - 26 / 80)
    month = by_period(rd_db.l6("month"))
    _check(month["2026-01-01"], interactions=105, retention_delta_pts=expected)
    allp = by_period(rd_db.l6("all"))
    assert sorted(allp) == ["2026-01-05"]
    _check(allp["2026-01-05"], interactions=105, retention_delta_pts=expected)


def _api_table(prep: Prepared, by: str, filters: dict | None):
    from pipelines import l6, warehouse  # noqa: PLC0415
    con = warehouse.connect(str(prep.db), read_only=True)
    try:
        df = l6.l6_table(con, by, filters)
    finally:
        con.close()
    return {str(r["period_start"])[:10]: r for r in df.to_dicts()}


def test_rd_segment_slice_api(rd_db):
    pro = _api_table(rd_db, "week", {"segment": ["pro"]})
    # segment pro, W1: AI a01-a30 20/30 ; non-AI restricted to pro users: n01-n40 15/40
    #   -> 100 * (2/3 - 3/8) = 29.1666...
    r = pro["2026-01-05"]
    assert (r["rd_n_ai"], r["rd_n_non_ai"]) == (30, 40)
    assert r["retention_delta_pts"] == approx(100 * (20 / 30 - 15 / 40))
    assert set(pro) == {"2026-01-05"}  # no pro interaction in W2
    free = _api_table(rd_db, "week", {"segment": ["free"]})
    # segment free, W1: AI b01-b30 15/30 ; non-AI m01-m30 6/30 -> 30.0
    r = free["2026-01-05"]
    assert (r["rd_n_ai"], r["rd_n_non_ai"]) == (30, 30)
    assert r["retention_delta_pts"] == approx(30.0)
    ent = _api_table(rd_db, "week", {"segment": ["enterprise"]})
    # enterprise, W2: AI c01-c30 (30), non-AI none -> null
    r = ent["2026-01-12"]
    assert (r["rd_n_ai"], r["rd_n_non_ai"]) == (30, 0)
    assert r["retention_delta_pts"] is None


def test_rd_experiment_group_none_slice_api(rd_db):
    # users outside the experiment (no experiment_group): c01-c35, e01-e10, f01-f03
    none = _api_table(rd_db, "week", {"experiment_group": ["(none)"]})
    assert set(none) == {"2026-01-12"}  # their interactions are all in W2
    r = none["2026-01-12"]
    # interactions c01-c29 FA, c30 FB (01-13), c31-c35 FA (01-15): 35
    assert r["interactions"] == 35 and r["completed"] == 35
    # W2 AI users among them: c01-c30 (c31-c35 anchor 01-15 > 01-14: excluded), retained
    #   c01-c12 (active 01-16) -> 12 / 30; non-AI: e01-e10 (anchor 01-14; f01-f03 anchor
    #   01-16 excluded), retained e01-e05 (01-21 = anchor + 7) -> 5 / 10: too few for RΔ
    assert (r["rd_n_ai"], r["rd_n_non_ai"]) == (30, 10)
    assert r["rd_retention_ai"] == approx(12 / 30) and r["rd_retention_non_ai"] == approx(5 / 10)
    assert r["retention_delta_pts"] is None
    treated = _api_table(rd_db, "week", {"experiment_group": ["treatment"]})
    assert set(treated) == {"2026-01-05"} and treated["2026-01-05"]["interactions"] == 70
    # both values = every user here (no holdout): the unsliced table
    both = _api_table(rd_db, "week", {"experiment_group": ["treatment", "(none)"]})
    whole = _api_table(rd_db, "week", None)
    for period in whole:
        for k in ("interactions", "rd_n_ai", "rd_n_non_ai", "retention_delta_pts"):
            assert both[period][k] == whole[period][k]


def test_rd_counts_and_interval_api(rd_db):
    t = _api_table(rd_db, "week", None)
    w1, w2 = t["2026-01-05"], t["2026-01-12"]
    assert (w1["rd_n_ai"], w1["rd_n_non_ai"]) == (60, 70)
    # end-of-data rule: c31-c35 (AI) and f01-f03 (non-AI) excluded in W2
    assert (w2["rd_n_ai"], w2["rd_n_non_ai"]) == (30, 35)
    # Wald interval for p1 - p2 (reading (e)), in points; z ~ 1.96
    p1, n1, p2, n2 = 35 / 60, 60, 21 / 70, 70
    se = (p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) ** 0.5
    d = 100 * (p1 - p2)
    assert w1["rd_ci_low"] == pytest.approx(d - 100 * 1.96 * se, rel=1e-4)
    assert w1["rd_ci_high"] == pytest.approx(d + 100 * 1.96 * se, rel=1e-4)
    fa = _api_table(rd_db, "week", {"feature": [FA]})
    assert (fa["2026-01-12"]["rd_n_ai"], fa["2026-01-12"]["rd_n_non_ai"]) == (29, 36)
    assert fa["2026-01-12"]["retention_delta_pts"] is None
