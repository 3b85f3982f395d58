"""The 8-week metric audit on the demo warehouse (SPEC §6): the SQL + statistics path
against independent computations from raw rows, the planted drift and TCR drop are
detected, records, sign-off, next_due, the audit gate, the CLI, and records surviving a
rebuild of the warehouse."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

from helpers_source import cli
from pipelines import audit, warehouse
from test_audit_stats import ece_numpy, psi_numeric_numpy, psi_reference


@pytest.fixture(scope="module")
def findings(demo_db):
    con = warehouse.connect(demo_db, read_only=True)
    try:
        return audit.run_audit(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def raw(demo_db):
    """Row-level interactions of the demo, read with plain SQL (no audit code)."""
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        return con.execute("""
            select activity_date, ts, user_id, feature, domain, input_tokens, confidence, outcome,
                   tier1_hallucinated, tier2_hallucinated, tier3_hallucinated
            from int_interactions""").df()
    finally:
        con.close()


def _between(df, span):
    d = pd.to_datetime(df["activity_date"]).dt.date
    return df[(d >= dt.date.fromisoformat(span["start"])) & (d <= dt.date.fromisoformat(span["end"]))]


def _copy(db, tmp_path):
    dst = tmp_path / "w.duckdb"
    shutil.copy(db, dst)
    return dst


# ----------------------------------------------------------------------------- windows
def test_default_windows_end_at_last_full_week(findings, raw):
    last = pd.to_datetime(raw["activity_date"]).dt.date.max()
    assert findings["as_of"] == (last + dt.timedelta(days=1)).isoformat()
    end = dt.date.fromisoformat(findings["window"]["end"])
    assert end.isoweekday() == 7 and end <= last and (last - end).days < 7
    assert dt.date.fromisoformat(findings["window"]["start"]) == end - dt.timedelta(days=55)
    assert dt.date.fromisoformat(findings["reference"]["end"]) == end - dt.timedelta(days=56)


# ----------------------------------------------------------------------------- SQL path vs independent
def test_drift_psi_matches_numpy(findings, raw):
    ref, cur = _between(raw, findings["reference"]), _between(raw, findings["window"])
    for var in ("input_tokens", "confidence"):
        r = ref[var].dropna().to_numpy(float)
        a = cur[var].dropna().to_numpy(float)
        assert findings["drift"][var]["psi"] == pytest.approx(psi_numeric_numpy(r, a), rel=1e-9, abs=1e-12), var
        edges = findings["drift_bins"][var]["edges"]
        assert edges == pytest.approx(np.quantile(r, np.arange(1, 10) / 10).tolist(), rel=1e-12)
    for var in ("feature", "domain"):
        rs = ref[var].value_counts(normalize=True)
        as_ = cur[var].value_counts(normalize=True)
        cats = sorted(set(rs.index) | set(as_.index))
        expected = psi_reference([rs.get(c, 0) for c in cats], [as_.get(c, 0) for c in cats])
        assert findings["drift"][var]["psi"] == pytest.approx(expected, rel=1e-9, abs=1e-12), var


def test_calibration_ece_matches_numpy(findings, raw):
    cur = _between(raw, findings["window"])
    cur = cur[cur["confidence"].notna() & cur["tier2_hallucinated"].notna()]
    conf = cur["confidence"].to_numpy(float)
    correct = (~cur["tier2_hallucinated"].astype(bool)).to_numpy(int)
    cal = findings["calibration"]
    assert cal["n"] == len(conf)
    assert cal["ece"] == pytest.approx(ece_numpy(conf, correct), rel=1e-9)
    assert sum(b["n"] for b in cal["bins"]) == len(conf) and len(cal["bins"]) == 10


def test_tier_agreement_kappa_matches_statsmodels(findings, raw):
    cur = _between(raw, findings["window"])
    both = cur[cur["tier1_hallucinated"].notna() & cur["tier2_hallucinated"].notna()]
    t1 = both["tier1_hallucinated"].astype(bool).to_numpy()
    t2 = both["tier2_hallucinated"].astype(bool).to_numpy()
    table = np.array([[np.sum(~t1 & ~t2), np.sum(~t1 & t2)], [np.sum(t1 & ~t2), np.sum(t1 & t2)]], float)
    t = findings["tier_agreement"]
    assert t["n"] == len(both)
    assert t["agreement"] == pytest.approx(np.mean(t1 == t2), rel=1e-12)
    assert t["kappa"] == pytest.approx(sm_kappa(table).kappa, rel=1e-9)
    assert t["tier3"]["vs_tier2"]["n"] == int((cur["tier2_hallucinated"].notna() & cur["tier3_hallucinated"].notna()).sum())


def test_decay_slope_matches_statsmodels_on_weekly_tcr(findings, raw):
    cur = _between(raw, findings["window"]).copy()
    d = pd.to_datetime(cur["activity_date"])
    cur["week"] = (d - pd.to_timedelta(d.dt.weekday, unit="D")).dt.date
    weekly = cur.groupby("week")["outcome"].apply(lambda s: float((s == "completed").mean())).sort_index()
    start = dt.date.fromisoformat(findings["window"]["start"])
    x = np.array([(w - start).days / 7 for w in weekly.index])
    fit = sm.OLS(weekly.to_numpy(), sm.add_constant(x)).fit()
    lo, hi = fit.conf_int(alpha=0.05)[1]
    dec = findings["decay"]["tcr"]
    assert dec["n_weeks"] == 8
    assert dec["slope_per_week"] == pytest.approx(fit.params[1], rel=1e-9)
    assert (dec["ci_low"], dec["ci_high"]) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


# ----------------------------------------------------------------------------- planted effects
def test_tcr_drop_is_detected(findings, demo_db):
    truths = json.loads((demo_db.parent / "source" / "truths.json").read_text())
    change = dt.date.fromisoformat(truths["tcr_drop"]["change_date"])
    assert dt.date.fromisoformat(findings["window"]["start"]) <= change <= dt.date.fromisoformat(findings["window"]["end"])
    dec = findings["decay"]["tcr"]
    assert dec["slope_per_week"] < 0 and dec["ci_high"] < 0 and dec["significant"]
    assert dec["direction"] == "toward_red" and dec["weeks_to_red"] is not None and dec["flagged"]
    assert any(f.startswith("decay: tcr") for f in findings["flags"])
    # the line across the window spans the planted change: the audit names the step's week
    # (the week the change date falls in) and that TCR has been flat since; HR, which rises
    # gradually (the planted drift), shows no step
    sh = dec["level_shift"]
    assert sh and sh["week_start"] == str(change - dt.timedelta(days=change.weekday()))
    assert sh["before"] > sh["after"] + 0.05 and sh["toward_red"]
    assert sh["since_trend"] == "flat" and sh["since_words"] == "no significant trend since"
    assert findings["decay"]["hr"]["level_shift"] is None
    assert any(f.startswith("decay: tcr") and f"level shift in the week of {sh['week_start']}" in f
               for f in findings["flags"])
    item = next(i for i in findings["scorecard"]["items"] if i["metric"] == "tcr")
    assert item["role"] == "primary" and item["change"] == "worsened" and item["points"] == -1.0
    assert findings["window_values"]["audit"]["tcr"] < findings["window_values"]["reference"]["tcr"] - 0.05
    # the drop is not mistaken for gaming
    assert not any(g["flagged"] for g in findings["gaming"] if g["primary"] == "tcr")
    assert findings["verdict"] in ("iterate", "re-define")


def test_planted_input_drift_is_detected(findings, demo_db):
    truths = json.loads((demo_db.parent / "source" / "truths.json").read_text())
    assert "billing" in truths["drift"]["direction"] and "input tokens median +25%" in truths["drift"]["direction"]
    dom = findings["drift"]["domain"]
    tok = findings["drift"]["input_tokens"]
    assert dom["shift_detected"] and dom["p_value"] < 1e-3
    assert tok["shift_detected"] and tok["p_value"] < 1e-3
    assert tok["audit_median"] > tok["reference_median"]
    bins = {b["bin"]: b for b in findings["drift_bins"]["domain"]["bins"]}
    rising = [d for d in ("billing", "sql", "javascript", "legal") if bins[d]["audit_share"] > bins[d]["reference_share"]]
    falling = [d for d in ("python", "finance", "hr", "account", "shipping")
               if bins[d]["audit_share"] < bins[d]["reference_share"]]
    assert len(rising) >= 3 and len(falling) >= 3, (rising, falling)
    assert any(f.startswith("drift") and "domain" in f for f in findings["flags"])
    for var in ("feature", "domain", "input_tokens", "confidence"):
        d = findings["drift"][var]
        assert d["psi"] >= 0 and d["band"] in ("stable", "moderate", "major")


def test_high_hr_domain_violates_guardrail(findings, demo_db):
    truths = json.loads((demo_db.parent / "source" / "truths.json").read_text())
    hr = next(g for g in findings["guardrails"] if g["metric"] == "hr")
    assert truths["hallucination"]["high_domain"] in hr["domains_violated"]
    assert hr["violated"]


def test_per_domain_guardrail_values_from_raw_rows(findings, raw):
    """Each domain's HR over the audit window (final verdict: tier 2 over tier 1), its 95%
    Wilson interval (statsmodels) and the violation rule (the whole interval above 5%)."""
    from statsmodels.stats.proportion import proportion_confint

    hr = next(g for g in findings["guardrails"] if g["metric"] == "hr")
    win = _between(raw, findings["window"])
    final = win["tier2_hallucinated"].where(win["tier2_hallucinated"].notna(), win["tier1_hallucinated"])
    got = {d["domain"]: d for d in hr["per_domain"]}
    assert set(got) == set(win["domain"].unique())
    for domain, verdicts in final.groupby(win["domain"]):
        judged = verdicts.dropna().astype(bool)
        k, n = int(judged.sum()), len(judged)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        d = got[domain]
        assert d["value"] == pytest.approx(k / n, abs=1e-12), domain
        assert (d["ci_low"], d["ci_high"]) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
        assert d["violated"] == (lo > 0.05), domain


def test_findings_are_json_and_complete(findings):
    text = json.dumps(findings)
    assert "NaN" not in text
    for key in ("window", "reference", "decay", "drift", "calibration", "tier_agreement", "alignment", "gaming",
                "data_quality", "score", "verdict", "contract_version", "config_versions"):
        assert key in findings, key
    assert set(findings["decay"]) == {"tcr", "hr", "tta_p50_s", "hitl_per_100", "retention_delta_pts", "cpvo_usd"}
    assert findings["verdict"] in audit.VERDICTS
    assert {(g["primary"], g["counter"]) for g in findings["gaming"]} >= {
        ("tcr", "requery_rate"), ("tcr", "completed_escalation_rate"), ("hr", "hr_coverage"), ("cpvo_usd", "tcr")}
    al = findings["alignment"]
    for period in ("audit", "reference"):
        pts = al[period]["points"]
        assert len(pts) == 8
        x = [p["north_star"] for p in pts]
        y = [p["behavior"] for p in pts]
        assert al[period]["corr"] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-9)
    dq = findings["data_quality"]
    assert dq["runs"] and any(r["built_this_warehouse"] for r in dq["runs"])


def test_run_audit_outside_the_data_is_refused(demo_db, findings):
    con = warehouse.connect(demo_db, read_only=True)
    try:
        with pytest.raises(ValueError, match="no interactions in the audit window"):
            audit.run_audit(con, dt.date(2020, 1, 1))
        # after the data: it would audit empty weeks and stay "the latest audit" for weeks
        last = con.execute("select max(activity_date) from l6_daily").fetchall()[0][0]  # Wed 2026-09-30
        monday = last + dt.timedelta(days=7 - last.weekday())  # 2026-10-05: its window ends Sun 10-04
        assert audit.run_audit(con, monday)["window"]["end"] == str(monday - dt.timedelta(days=1))
        with pytest.raises(ValueError, match=f"after the data .* choose --as-of {monday} or earlier"):
            audit.run_audit(con, monday + dt.timedelta(days=7))  # its last week holds no data
    finally:
        con.close()
    assert findings["reference_empty"] is False  # the default audit has its 8 reference weeks


def test_an_audit_with_no_reference_data_says_it_compared_nothing(demo_db):
    # the audit window starts at the data's first week: its reference window (the 8 weeks
    # before) holds no data, so a score of 0 means "not compared", and the audit says so
    con = warehouse.connect(demo_db, read_only=True)
    try:
        first = con.execute("select min(activity_date) from l6_daily").fetchall()[0][0]
        monday = first - dt.timedelta(days=first.weekday())
        f = audit.run_audit(con, monday + dt.timedelta(weeks=8))
    finally:
        con.close()
    assert f["reference"]["end"] < str(first) and f["window"]["start"] == str(monday)
    assert any(n.startswith("no data in the reference window") for n in f["notes"])
    assert all(i["change"] == "within noise" for i in f["scorecard"]["items"] if "change" in i)
    assert "nothing was compared: no data in the reference window" in f["scorecard"]["reason"]
    assert f["reference_empty"] is True
    out = audit._output({"findings": f, "audit_id": "a", "score": f["score"], "verdict": f["verdict"]}, None)
    text = audit.text_report(out)
    assert "Notes:\n  - no data in the reference window" in text


# ----------------------------------------------------------------------------- records
def test_audit_suites_exist():
    from pipelines import EXPECTATIONS_DIR

    for table in ("audit_checks", "audit_records"):
        doc = json.loads((EXPECTATIONS_DIR / f"audit__{table}.json").read_text())
        assert doc["name"] == f"audit__{table}" and doc["expectations"]
        assert all(e["meta"]["severity"] in ("critical", "warning") for e in doc["expectations"])


def test_record_sign_next_due_and_gate(findings, demo_db, tmp_path):
    db = _copy(demo_db, tmp_path)
    con = warehouse.connect(db, read_only=True)
    before = audit.next_due(con, today=dt.date(2026, 10, 1))
    n_before = len(audit.history(con))  # the shared demo may already hold an (unsigned) audit
    con.close()
    assert before["never_signed"] and before["signed_by"] is None and "no audit has ever been signed" in before["note"]
    first = dt.date.fromisoformat(findings["data"]["first_date"])
    assert before["next_due"] == first + dt.timedelta(days=56) and before["overdue"] is True

    audit_id = audit.record(db, findings)
    con = warehouse.connect(db, read_only=True)
    rec = audit.latest(con)
    assert rec["audit_id"] == audit_id and rec["signed_by"] is None and rec["next_due"] is None
    assert rec["findings"]["verdict"] == findings["verdict"] == rec["verdict"]
    assert rec["contract_version"] == findings["contract_version"]
    assert rec["window_start"].isoformat() == findings["window"]["start"]
    hist = audit.history(con)
    assert len(hist) == n_before + 1 and hist[0]["audit_id"] == audit_id and "findings" not in hist[0]
    pending = audit.next_due(con)
    assert pending["never_signed"] and pending["awaiting_signoff"] == audit_id
    n_checks = con.execute("select count(*) from audit_checks where audit_id = ?", [audit_id]).fetchall()[0][0]
    assert n_checks > 50
    gates_ran = warehouse.table_exists(con, "meta_gate_results") and con.execute(
        "select count(*) from meta_gate_results where run_id = ? and stage = 'audit'", [audit_id]).fetchall()[0][0]
    con.close()

    assert gates_ran, "record() must run the audit gate (expectations/audit__*.json)"
    if gates_ran:  # the audit's own suite ran on its outputs and passed
        assert rec["gate_success"] is True
        con = warehouse.connect(db)
        try:
            failed = con.execute("select count(*) from meta_gate_results where run_id = ? and not success "
                                 "and severity = 'critical'", [audit_id]).fetchall()[0][0]
            assert failed == 0
            # a broken statistic is caught by the suite
            con.execute("insert into audit_checks values (?, 'drift', 'bogus', 'psi', 'psi', -0.5, null, null, null)",
                        [audit_id])
            con.execute("insert into audit_checks values (?, 'tier_agreement', 'bogus', 'kappa', 'kappa', 1.5, "
                        "null, null, null)", [audit_id])
            from pipelines import gates

            outcome = gates.run_gate(con, "audit", audit_id)
            names = {f["expectation"] for f in outcome.failures}
            assert not outcome.success and {"psi_non_negative", "kappa_in_range"} <= names
        finally:
            con.close()

    with pytest.raises(ValueError, match="decision"):
        audit.sign(db, audit_id, "Ada", "")
    signed = audit.sign(db, audit_id, "Ada Lovelace", "iterate")
    assert signed["signed_by"] == "Ada Lovelace" and signed["decision"] == "iterate"
    assert signed["next_due"] == signed["signed_at"].date() + dt.timedelta(days=56)
    with pytest.raises(ValueError, match="already signed"):
        audit.sign(db, audit_id, "Bob", "keep")
    con = warehouse.connect(db, read_only=True)
    try:
        due = audit.next_due(con)
        assert due["next_due"] == signed["next_due"] and not due["never_signed"] and due["audit_id"] == audit_id
        assert due["overdue"] is False
        assert audit.next_due(con, today=signed["next_due"] + dt.timedelta(days=1))["overdue"] is True
    finally:
        con.close()


def test_a_back_dated_audit_is_kept_but_is_not_the_latest(findings, demo_db, tmp_path):
    # an audit run today as of an earlier date (a look back) joins the history; the latest
    # audit (shown on the page, signed by a sign-off without an id, awaiting sign-off) stays
    # the one of the newest audit date
    db = _copy(demo_db, tmp_path)
    current = audit.record(db, findings, gate=False)
    as_of = dt.date.fromisoformat(str(findings["as_of"])[:10])
    con = warehouse.connect(db, read_only=True)
    try:
        back = audit.run_audit(con, as_of - dt.timedelta(days=28))
    finally:
        con.close()
    older = audit.record(db, back, gate=False)  # recorded after `current`
    con = warehouse.connect(db, read_only=True)
    try:
        assert audit.latest(con)["audit_id"] == current
        hist = audit.history(con)
        assert [h["audit_id"] for h in hist].index(current) < [h["audit_id"] for h in hist].index(older)
        assert str(hist[[h["audit_id"] for h in hist].index(older)]["as_of"])[:10] == str(as_of - dt.timedelta(days=28))
        assert audit.next_due(con)["awaiting_signoff"] == current
    finally:
        con.close()
    signed = audit.sign(db, None, "Ada Lovelace", "keep")  # no id: the latest audit
    assert signed["audit_id"] == current
    audit.record(db, back, gate=False)  # another look back, unsigned: not awaiting sign-off
    con = warehouse.connect(db, read_only=True)
    try:
        due = audit.next_due(con)
        assert due["audit_id"] == current and due["awaiting_signoff"] is None
    finally:
        con.close()
    again = audit.record(db, findings, gate=False)  # the same date audited again: the newer record
    con = warehouse.connect(db, read_only=True)
    try:
        assert audit.latest(con)["audit_id"] == again and audit.next_due(con)["awaiting_signoff"] == again
    finally:
        con.close()


def test_records_survive_a_rebuild(findings, demo_db, tmp_path):
    from pipelines import runner

    db = _copy(demo_db, tmp_path)
    audit_id = audit.record(db, findings, gate=False)
    signed = audit.sign(db, audit_id, "Grace Hopper", "keep")
    result = runner.run(demo_db.parent / "source", db, command="run", gates=False)
    assert result.status == "success"
    con = warehouse.connect(db, read_only=True)
    try:
        runs = con.execute("select count(*) from meta_runs").fetchall()[0][0]
        assert runs >= 2  # really rebuilt
        rec = audit.latest(con)
        assert rec["audit_id"] == audit_id and rec["signed_by"] == "Grace Hopper"
        assert rec["next_due"] == signed["next_due"] and rec["findings"]["score"] == findings["score"]
        assert con.execute("select count(*) from audit_checks where audit_id = ?", [audit_id]).fetchall()[0][0] > 0
        assert audit.next_due(con)["audit_id"] == audit_id
    finally:
        con.close()


def test_the_run_records_an_unsigned_audit_and_gates_it(demo_db):
    con = warehouse.connect(demo_db, read_only=True)
    try:
        recs = audit.history(con)
        run_id = con.execute("select run_id from meta_runs where status = 'success' "
                             "order by started_at desc limit 1").fetchall()[0][0]
        last = con.execute("select max(activity_date) from int_interactions").fetchall()[0][0]
        gate = con.execute("select count(*), count(*) filter (where not success and severity = 'critical') "
                           "from meta_gate_results where run_id = ? and stage = 'audit'", [run_id]).fetchall()[0]
    finally:
        con.close()
    assert len(recs) == 1
    rec = recs[0]
    assert rec["signed_by"] is None and rec["gate_success"] is True
    assert str(rec["as_of"]) == str(last + dt.timedelta(days=1))  # audited as of the day after the data
    assert gate[0] > 0 and gate[1] == 0  # the audit suites ran in the run, under its run id


def test_a_rerun_of_the_same_data_adds_no_audit_and_keeps_signatures_made_meanwhile(demo_db, tmp_path, monkeypatch):
    from pipelines import runner

    db = _copy(demo_db, tmp_path)
    con = warehouse.connect(db, read_only=True)
    audit_id = audit.latest(con)["audit_id"]
    con.close()
    real_stage = audit.run_stage

    def sign_while_building(build_con, log=None):
        # someone signs the audit on the page while the run is building its new file
        audit.sign(db, audit_id, "Ada Lovelace", "iterate")
        return real_stage(build_con, log)

    monkeypatch.setattr(audit, "run_stage", sign_while_building)
    result = runner.run(demo_db.parent / "source", db, command="run", gates=False)
    assert result.status == "success"
    con = warehouse.connect(db, read_only=True)
    try:
        recs = audit.history(con)
        n_checks = con.execute("select count(*) from audit_checks where audit_id = ?", [audit_id]).fetchall()[0][0]
    finally:
        con.close()
    assert [r["audit_id"] for r in recs] == [audit_id]  # same as-of date: not recorded twice
    assert recs[0]["signed_by"] == "Ada Lovelace" and recs[0]["decision"] == "iterate"
    assert n_checks > 0


# ----------------------------------------------------------------------------- CLI
def test_cli_run_json_and_sign(demo_db, tmp_path):
    db = _copy(demo_db, tmp_path)
    con = warehouse.connect(db, read_only=True)
    n_before = len(audit.history(con))
    con.close()
    p = cli("audit", "--db", db, "--format", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["audit_id"].startswith("audit-") and out["verdict"] in audit.VERDICTS
    assert isinstance(out["score"], (int, float)) and out["next_due"] is None
    assert {"decay", "drift", "calibration", "tier_agreement", "alignment", "gaming", "data_quality"} <= set(out)

    p = cli("audit", "--db", db, "--sign", "Ada")
    assert p.returncode == 2 and "--decision" in p.stderr and "Traceback" not in p.stderr

    p = cli("audit", "--db", db, "--sign", "Ada", "--decision", "iterate", "--format", "json")
    assert p.returncode == 0, p.stderr
    signed = json.loads(p.stdout)
    assert signed["audit_id"] == out["audit_id"] and signed["signed_by"] == "Ada" and signed["decision"] == "iterate"
    signed_date = dt.datetime.fromisoformat(signed["signed_at"]).date()
    assert signed["next_due"] == (signed_date + dt.timedelta(days=56)).isoformat()
    assert signed["schedule"]["next_due"] == signed["next_due"] and not signed["schedule"]["overdue"]

    p = cli("audit", "--db", db, "--as-of", "2026-09-14")
    assert p.returncode == 0, p.stderr
    assert "Metric audit" in p.stdout and "Decay" in p.stdout
    con = warehouse.connect(db, read_only=True)
    try:
        hist = audit.history(con)
        assert len(hist) == n_before + 2 and dt.date(2026, 9, 14) in [h["as_of"] for h in hist]
        assert audit.latest(con)["as_of"] == dt.date(2026, 10, 1)  # a look back is not the latest
    finally:
        con.close()

    p = cli("audit", "--db", tmp_path / "missing.duckdb")
    assert p.returncode == 2 and "does not exist" in p.stderr


def test_score_range_of_the_shipped_contract():
    # primary +1 and three secondaries at +0.5 each: +2.5 at best; at worst all four worsen
    # (−2.5) and the HR guardrail and the CPVO efficiency bar are violated (−2 each): −6.5
    from pipelines import audit

    assert audit.score_range() == {"low": -6.5, "high": 2.5, "keep_min": 0.0}


def test_the_runs_own_audit_checks_the_gates_of_the_run_that_built_it(demo_db):
    """The audit recorded by the demo's run looks at that run's gate results (raw → bridge,
    evaluated before the audit stage). It used to look only for a finished successful run,
    found none in a first build, and said "0 checks … ✔ ok"."""
    con = duckdb.connect(str(demo_db), read_only=True)
    [(run_id,)] = con.execute("select run_id from meta_runs where status = 'success' "
                              "order by started_at desc limit 1").fetchall()
    [(created, dq_json)] = con.execute("select created_at, json_extract(findings, '$.data_quality') "
                                       "from audit_records order by created_at limit 1").fetchall()
    [(expected,)] = con.execute("select count(*) from meta_gate_results where run_id = ? and evaluated_at <= ?",
                                [run_id, created]).fetchall()
    con.close()
    dq = json.loads(dq_json)
    builder = [r for r in dq["runs"] if r["built_this_warehouse"]]
    assert [r["run_id"] for r in builder] == [run_id]
    assert expected > 100 and dq["checks"] == builder[0]["checks"] == expected
    assert dq["flagged"] is False and "no gate results" not in dq["note"]
