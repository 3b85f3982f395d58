"""pipelines.l6.l6_table against the independent polars reference (tests/reference_l6.py)
on a demo warehouse: every column, every grain, several slices, to 1e-9."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_source import REPO_ROOT, background, scratch_dir  # noqa: E402
from reference_l6 import COLUMNS, GRAINS, _matches, load_tables, reference_l6  # noqa: E402

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

TOL = 1e-9


# started at import (collection) time so it overlaps with the other test modules
_DEMO_DB = scratch_dir("demo") / "demo.duckdb"
_DEMO = background("demo", "--db", _DEMO_DB, "--users", "3000", "--days", "183",
                   "--seed", "3", timeout=600)


@pytest.fixture(scope="session")
def ref_demo_db() -> Path:
    db = _DEMO_DB
    p = _DEMO.result()
    assert p.returncode == 0, f"demo exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return db


@pytest.fixture(scope="session")
def wh(ref_demo_db):
    from pipelines import warehouse  # noqa: PLC0415
    con = warehouse.connect(str(ref_demo_db), read_only=True)
    yield con, load_tables(con)
    con.close()


def _values(tables, col, n=2):
    """The most frequent values of a slice column (deterministic)."""
    import polars as pl  # noqa: PLC0415
    src = tables["stg_users"] if col in ("segment", "experiment_group") else tables["stg_interactions"]
    vc = (src.filter(pl.col(col).is_not_null()).group_by(col).agg(pl.len().alias("n"))
             .sort(["n", col], descending=[True, False]))
    return vc[col].to_list()[:n]


SLICES = ["none", "feature", "domain", "segment", "model_version", "experiment_group",
          "no_experiment_group", "feature+segment", "two_features"]


def _filters(tables, name):
    if name == "none":
        return None
    if name == "feature+segment":
        return {"feature": _values(tables, "feature")[:1], "segment": _values(tables, "segment")[:1]}
    if name == "two_features":
        return {"feature": _values(tables, "feature", 2)}
    if name == "no_experiment_group":  # users outside the experiment (no group)
        return {"experiment_group": ["(none)"]}
    if name == "experiment_group":
        # both groups of the SPEC; holdout users should have no interactions, treatment do
        return {"experiment_group": ["treatment"]}
    return {name: _values(tables, name)[:1]}


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(float(a), float(b), rel_tol=TOL, abs_tol=TOL)


def _compare(got_df, exp_df, label):
    missing = set(COLUMNS) - set(got_df.columns)
    assert not missing, f"{label}: l6_table lacks columns {sorted(missing)}"
    got = {str(r["period_start"])[:10]: r for r in got_df.to_dicts()}
    exp = {str(r["period_start"])[:10]: r for r in exp_df.to_dicts()}
    problems = []
    if sorted(got) != sorted(exp):
        problems.append(f"periods differ: only in l6_table {sorted(set(got) - set(exp))[:5]}, "
                        f"only in reference {sorted(set(exp) - set(got))[:5]}")
    for ps in sorted(set(got) & set(exp)):
        for c in COLUMNS[1:]:
            if not _same(got[ps][c], exp[ps][c]):
                problems.append(f"{ps} {c}: l6_table={got[ps][c]!r} reference={exp[ps][c]!r}")
    assert not problems, f"{label}: {len(problems)} mismatches\n" + "\n".join(problems[:25])


@pytest.mark.parametrize("slice_name", SLICES)
@pytest.mark.parametrize("by", GRAINS)
def test_l6_matches_reference(wh, by, slice_name):
    from pipelines import l6  # noqa: PLC0415
    con, tables = wh
    filters = _filters(tables, slice_name)
    got = l6.l6_table(con, by, filters)
    exp = reference_l6(tables, by, filters)
    assert exp.height > 0, f"reference found no rows for {filters}"
    _compare(got, exp, f"by={by} filters={filters}")


def test_reference_sanity(wh):
    """The demo must exercise the interesting branches, or the comparison proves little."""
    _, tables = wh
    t = reference_l6(tables, "month")
    assert t["retention_delta_pts"].drop_nulls().len() > 0, "no month with a RΔ value"
    assert t["hr"].drop_nulls().len() > 0
    assert tables["stg_infra_costs"].height > 0, "demo has no infra_costs"


# ------------------------------------------------------------------ bridge measures (Explore)
def _reference_bridge(con, tables, by, filters):
    """The bridge measures of pipelines/bridge_metrics.py, rewritten in polars from the staged
    tables and config/assumptions.toml (read here with tomllib)."""
    import tomllib  # noqa: PLC0415

    import polars as pl  # noqa: PLC0415
    from reference_l6 import final_verdicts, period_of  # noqa: PLC0415

    a = tomllib.loads((REPO_ROOT / "config" / "assumptions.toml").read_text())["assumptions"]
    base = a["manual_baseline_minutes_per_task"]
    filters = filters or {}
    users = tables["stg_users"].select("user_id", "segment", "experiment_group")
    itv = tables["stg_interventions"].group_by("interaction_id").agg(pl.col("duration_s").sum().alias("itv_s"))
    i = (tables["stg_interactions"].join(users, on="user_id", how="left")
         .join(final_verdicts(tables["stg_adjudications"]), on="interaction_id", how="left")
         .join(itv, on="interaction_id", how="left")
         .with_columns(date=pl.col("ts").dt.date()))
    for k, v in filters.items():
        i = i.filter(_matches(k, v))  # "(none)": a null value
    i = i.with_columns(
        ce=pl.col("outcome").is_in(["corrected", "escalated"]),
        valid=(pl.col("outcome") == "completed") & ~pl.col("final_hallucinated").fill_null(False),
        base=pl.col("feature").replace_strict(base["by_feature"], default=base["default"], return_dtype=pl.Float64))
    i = i.with_columns(tta=pl.when(pl.col("valid") & pl.col("verification_ms").is_not_null())
                       .then((pl.col("latency_ms") + pl.col("verification_ms")) / 1000.0))
    i = i.with_columns(period=pl.col("date").map_elements(lambda d: period_of(d, by), return_dtype=pl.Date))
    # infra: each feature's infra of the period x the slice's share of that feature's interactions
    everyone = (tables["stg_interactions"].with_columns(date=pl.col("ts").dt.date())
                .with_columns(period=pl.col("date").map_elements(lambda d: period_of(d, by), return_dtype=pl.Date))
                .group_by("period", "feature").agg(pl.len().alias("all_n")))
    mine = i.group_by("period", "feature").agg(pl.len().alias("n"))
    infra = tables["stg_infra_costs"]
    if "feature" in filters:
        infra = infra.filter(pl.col("feature").is_in(filters["feature"]))
    only_features = not set(filters) - {"feature"}
    infra = (infra.with_columns(period=pl.col("date").map_elements(lambda d: period_of(d, by), return_dtype=pl.Date))
             .group_by("period", "feature").agg(pl.col("cost_usd").sum())
             .join(everyone, on=["period", "feature"], how="left").join(mine, on=["period", "feature"], how="left")
             .with_columns(share=pl.when(pl.col("all_n").fill_null(0) > 0)
                           .then(pl.col("n").fill_null(0) / pl.col("all_n"))
                           .otherwise(1.0 if only_features else 0.0))
             .with_columns(cost_usd=pl.col("cost_usd") * pl.col("share")))
    out = {}
    for (p,), g in i.group_by("period"):
        n, ce = g.height, g["ce"].sum()
        ce_s = g.filter("ce")["itv_s"].fill_null(0).sum()
        hours = ce_s / 3600 + ce * a["review_minutes_per_correction"]["value"] / 60
        t = g.filter(pl.col("tta").is_not_null())
        saved = ((t["base"] - t["tta"] / 60).mean()) if t.height else None
        v = g["valid"].sum()
        out[p] = {"corrections_escalations_per_100": 100 * ce / n, "human_review_hours": hours,
                  "review_cost_usd": hours * a["reviewer_cost_per_hour_usd"]["value"],
                  "valid_outputs": v, "minutes_saved_per_task": saved,
                  "user_hours_saved": None if saved is None else saved * v / 60,
                  "productivity_value_usd": None if saved is None else saved * v / 60 * a["user_hour_value_usd"]["value"],
                  "ai_spend_usd": g["cost_usd"].sum() + infra.filter(pl.col("period") == p)["cost_usd"].sum(),
                  "support_contacts_per_1k": None, "agent_hours": None, "support_cost_usd": None}
    if not set(filters) & {"feature", "domain", "model_version"}:
        tk = con.sql("select user_id, created_ts, handle_time_min from stg_support_tickets").pl()
        tk = tk.join(users.with_columns(known=pl.lit(True)), on="user_id", how="left").with_columns(
            date=pl.col("created_ts").dt.date(), known=pl.col("known").fill_null(False))
        if "experiment_group" not in filters:  # the users who can use the AI feature
            tk = tk.filter(pl.col("experiment_group").fill_null("") != "holdout")
        for k, v in filters.items():
            tk = tk.filter(_matches(k, v) & (pl.col("known") | pl.col(k).is_not_null()))  # (none): known users
        for p, row in out.items():
            row.update(support_contacts_per_1k=0.0, agent_hours=0.0, support_cost_usd=0.0)
        tk = tk.with_columns(period=pl.col("date").map_elements(lambda d: period_of(d, by), return_dtype=pl.Date))
        for (p,), g in tk.group_by("period"):
            row = out.setdefault(p, {})
            row["agent_hours"] = g["handle_time_min"].sum() / 60
            row["support_cost_usd"] = row["agent_hours"] * a["agent_cost_per_hour_usd"]["value"]
            n = i.filter(pl.col("period") == p).height
            row["support_contacts_per_1k"] = 1000 * g.height / n if n else None
    return out


@pytest.mark.parametrize("by,slice_name", [("week", "none"), ("month", "segment"), ("week", "feature"),
                                            ("day", "domain"), ("quarter", "experiment_group"),
                                            ("week", "no_experiment_group")])
def test_bridge_measures_match_reference(wh, by, slice_name):
    from pipelines import bridge_metrics  # noqa: PLC0415
    con, tables = wh
    filters = _filters(tables, slice_name)
    got = {r["period_start"]: r for r in bridge_metrics.table(con, by, filters).iter_rows(named=True)}
    exp = _reference_bridge(con, tables, by, filters)
    assert sorted(got) == sorted(exp)
    problems = [f"{p} {c}: got {got[p][c]!r} reference {v!r}" for p, row in exp.items() for c, v in row.items()
                if not _same(got[p][c], v)]
    assert not problems, "\n".join(problems[:20])
    assert all(len(row) == len(bridge_metrics.MEASURES) for row in exp.values() if "valid_outputs" in row)


def test_bridge_measures_equal_the_bridge_nodes_on_the_treatment_quarter(wh):
    """On a quarter and experiment_group = treatment, Explore's measures are the Bridge
    page's node values (bridge_nodes), computed by another path (sql/bridge, bridge.py)."""
    from pipelines import bridge_metrics  # noqa: PLC0415
    con, _ = wh
    nodes = {}
    for q, node, v in con.execute("select quarter, measure, value from bridge_nodes").fetchall():
        nodes.setdefault(q, {})[node] = v
    got = bridge_metrics.table(con, "quarter", {"experiment_group": ["treatment"]})
    checked = 0
    for r in got.iter_rows(named=True):
        q = f"{r['period_start'].year}Q{(r['period_start'].month - 1) // 3 + 1}"
        for m in bridge_metrics.MEASURES:
            if q in nodes and m in nodes[q] and nodes[q][m] is not None:
                assert _same(r[m], nodes[q][m]), (q, m, r[m], nodes[q][m])
                checked += 1
    assert checked >= 10, checked
