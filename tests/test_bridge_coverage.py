"""Planted-effect recovery of the KPI bridge's causal comparison (SPEC §4).

Over 20 small demo seeds (3,000 users each), the 95% interval of every treatment-vs-holdout
difference must cover the generator's planted truth (`truths["causal"][quarter]`, the
population expectation of the generating process) in at least 17 of 20 seeds, for every
measure and every full quarter. The causal part is computed straight from the generated
files (views named like the staged tables) with the bridge's own SQL models and
statistics, not through the whole run, so the test stays fast.
"""
from __future__ import annotations

import json

import duckdb
import pytest

from pipelines import bridge, demo_data, warehouse

SEEDS = list(range(1, 21))
USERS = 3000
MIN_COVERED = 17
MEASURES = ["tickets_per_user", "agent_hours_per_user", "retained_7d_share", "support_cost_per_user_usd"]


def causal_from_source(src) -> dict:
    """The bridge's causal estimates for a generated source folder."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"create view stg_users as select * from read_parquet('{src}/users.parquet')")
    con.execute(f"create view stg_support_tickets as select * from read_parquet('{src}/support_tickets.parquet')")
    con.execute(f"create view stg_user_activity as "
                f"select distinct user_id, activity_date from read_parquet('{src}/user_activity.parquet')")
    con.execute(f"""create table int_interactions as
                    select i.user_id, cast(i.ts as date) as activity_date, u.experiment_group, u.signup_date
                    from read_parquet('{src}/interactions.parquet') as i
                    join stg_users as u on u.user_id = i.user_id""")
    warehouse.run_model(con, "metrics/int_user_active_days.sql")
    bridge.run_models_causal(con)
    est = bridge.causal_estimates(con)
    con.close()
    return est


@pytest.fixture(scope="module")
def coverage(tmp_path_factory):
    root = tmp_path_factory.mktemp("coverage")
    hits: dict[tuple[str, str], list[bool]] = {}
    misses = []
    rate = bridge.assumptions()["items"]["agent_cost_per_hour_usd"]["value"]
    for seed in SEEDS:
        src = root / f"s{seed}"
        truths = demo_data.generate(src, seed=seed, users=USERS)
        est = causal_from_source(src)
        for quarter, truth in truths["causal"].items():
            for m in MEASURES:
                t = (truth["agent_hours_per_user"]["diff"] * rate if m == "support_cost_per_user_usd"
                     else truth[m]["diff"])
                r = est[quarter][m]
                ok = r["ci_low"] <= t <= r["ci_high"]
                hits.setdefault((quarter, m), []).append(ok)
                if not ok:
                    misses.append({"seed": seed, "quarter": quarter, "measure": m, "truth": t,
                                   "ci": [r["ci_low"], r["ci_high"]]})
        for p in src.iterdir():
            p.unlink()
    table = {f"{q} {m}": f"{sum(v)}/{len(v)}" for (q, m), v in sorted(hits.items())}
    print("\nKPI bridge causal coverage (95% interval covers the planted truth):\n"
          + json.dumps(table, indent=1) + "\nmisses: " + json.dumps(misses))
    return hits, misses


def test_every_causal_difference_covers_the_planted_truth(coverage):
    hits, misses = coverage
    assert hits, "the generator planted no causal truths"
    assert {m for _, m in hits} == set(MEASURES)
    for (quarter, measure), v in hits.items():
        assert len(v) == len(SEEDS)
        assert sum(v) >= MIN_COVERED, (f"{quarter} {measure}: interval covered the truth in {sum(v)}/{len(v)} "
                                        f"seeds; misses {[x for x in misses if x['measure'] == measure]}")


def test_overall_coverage_is_near_nominal(coverage):
    hits, _ = coverage
    flat = [x for v in hits.values() for x in v]
    # 95% nominal; over 160 intervals anything below 88% would point at a too-narrow interval
    assert sum(flat) / len(flat) >= 0.88
