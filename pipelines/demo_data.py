"""Synthetic telemetry generator with planted effects (SPEC §2 tables as Parquet).

``generate(out_dir, seed, users, days, end_date, interactions, bad_rows)`` writes
users, interactions, adjudications, interventions, user_activity, support_tickets
and infra_costs as Parquet files (SPEC §2 columns and types) plus ``truths.json``:
the planted effects a later stage should find, and returns the same dict.

How the data are made (all vectorized; the only Python loop runs over days):

* Users carry latent traits drawn once: signup day, segment, experiment group,
  weekday activity propensity, churn hazard, AI adoption and intensity, primary
  feature, "never verifies". Holdout users never adopt the AI feature.
* A day loop over the window (vectorized over users) decides, per user-day,
  whether the user is engaged (active) and whether they hit at least one
  hallucinated AI output that day. A hallucination lowers the user's engagement
  for the next ``burn_days`` days (the 7-day return probability drops).
* Everything else is drawn from those user-days: the number of interactions
  (Poisson thinning: hallucinated ~ Poisson(lam*h), others ~ Poisson(lam*(1-h))),
  feature/domain (conditional on the hallucination flag so each domain keeps its
  hallucination rate), outcome, tokens, cost, confidence, verdicts (tiers 1-3),
  interventions, tickets (base tickets per active day, fewer for AI adopters, plus
  tickets caused by failed or hallucinated outputs).
* The causal truths (treatment - holdout, per full quarter) are population
  expectations of this very process: the same day loop run with a fixed, separate
  random stream on 2 x 250,000 simulated users (one copy of each user as
  treatment, one as holdout: common random numbers), with the ticket and hour
  counts replaced by their conditional expectations (Rao-Blackwellized).
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import json
import math
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import config

__all__ = ["generate", "PARAMS", "SCHEMAS"]

# --------------------------------------------------------------------------- constants
FEATURES = ("support_assistant", "code_assistant", "doc_summarizer")
DOMAINS = {
    "support_assistant": ("billing", "account", "shipping"),
    "code_assistant": ("python", "sql", "javascript"),
    "doc_summarizer": ("legal", "finance", "hr"),
}
CELLS = [(f, d) for f in FEATURES for d in DOMAINS[f]]  # cell c -> feature c // 3
CELL_FEATURE = np.repeat(np.arange(3), 3)
OUTCOMES = ("completed", "corrected", "fallback", "escalated", "abandoned")
SEGMENTS = ("free", "pro", "enterprise")
GROUPS = ("treatment", "holdout", None)  # code 0, 1, 2
KINDS = ("edit", "override", "review", "escalation")
MODEL_VERSIONS = ("v2.3", "v2.4", "v3-ctx4k")

US_PER_DAY = 86_400_000_000
BLOCK_USERS = 50_000
MC_USERS = 250_000  # per arm (treatment copy + holdout copy = 500,000 simulated users)
MC_SEED = 20_260_930

PARAMS: dict[str, Any] = {
    # users
    "segment_share": [0.70, 0.22, 0.08],
    "group_share": [0.80, 0.10, 0.10],  # treatment, holdout, null
    "pre_window_share": 0.60,
    "pre_window_max_age_days": 540,
    # activity
    "engagement_beta": [1.05, 1.25],  # weekday propensity before multipliers
    "engagement_segment_mult": [0.90, 1.10, 1.25],
    "engagement_cap": 0.95,
    "weekend_mult": 0.60,
    "signup_day_p": 0.90,
    "adopter_share": [0.85, 0.0, 0.70],  # per group
    "adopter_engagement_mult": 1.20,
    "churn_hazard": [0.0060, 0.0030, 0.0015],  # per day, per segment
    "churn_gamma_shape": 2.0,
    "adopter_churn_mult": 0.60,
    "burn_days": 7,
    "burn_engagement_mult": 0.60,
    # AI usage
    "lambda_mean": 0.75,  # interactions per engaged day (adopter, before multipliers)
    "lambda_gamma_shape": 2.0,
    "lambda_segment_mult": [0.90, 1.10, 1.30],
    "lambda_ramp": [0.90, 1.10],  # usage grows linearly over the window
    "primary_feature_share": [0.45, 0.33, 0.22],
    "primary_feature_stickiness": 0.80,
    "domain_share_start": [[0.36, 0.34, 0.30], [0.50, 0.25, 0.25], [0.30, 0.40, 0.30]],
    "domain_share_end": [[0.46, 0.29, 0.25], [0.40, 0.32, 0.28], [0.38, 0.35, 0.27]],
    "hr_domain": [0.062, 0.020, 0.015, 0.018, 0.022, 0.016, 0.024, 0.020, 0.012],
    "hr_post_change_mult": 1.20,
    # outcomes: P(completed | not hallucinated, feature) before/after the change
    "p_completed_ok_pre": [0.850, 0.825, 0.840],
    "p_completed_ok_post": [0.710, 0.690, 0.650],
    "fail_mix_ok_pre": [0.45, 0.22, 0.13, 0.20],  # corrected, fallback, escalated, abandoned
    "fail_mix_ok_post": [0.52, 0.20, 0.12, 0.16],
    "outcome_halluc": [0.22, 0.33, 0.17, 0.18, 0.10],
    # tokens, latency, verification, cost
    "input_tokens_median": [320, 850, 2600],
    "input_tokens_sigma": [0.6, 0.6, 0.5],
    "input_tokens_drift": 0.25,  # +25% median from first to last day
    "context_cap_pre": 8192,
    "context_cap_post": 4096,
    "output_tokens_median": [170, 320, 260],
    "output_tokens_sigma": [0.5, 0.5, 0.45],
    "price_in_per_mtok": {"v2.3": 1.00, "v2.4": 1.00, "v3-ctx4k": 0.95},
    "price_out_per_mtok": {"v2.3": 3.30, "v2.4": 3.30, "v3-ctx4k": 3.20},
    "latency_base_ms": 250.0,
    "latency_per_out_token_ms": 2.2,
    "latency_per_in_token_ms": 0.12,
    "latency_sigma": 0.35,
    "latency_post_mult": 0.85,
    "never_verify_user_share": 0.27,
    "no_verify_interaction_share": 0.04,
    "verification_median_ms": 6200.0,
    "verification_feature_mult": [0.85, 1.30, 1.10],
    "verification_sigma": 0.55,
    "verification_post_mult": 1.30,
    "confidence_beta_mean": [0.90, 0.87, 0.74],  # ok&completed, ok&not completed, hallucinated
    "confidence_beta_conc": [20.0, 15.0, 10.0],
    "confidence_null_share": 0.02,
    "session_null_share": 0.04,
    # adjudications
    "tier1_coverage": 0.97,
    "tier1_sensitivity": 0.88,
    "tier1_false_positive": 0.004,
    "tier1_recheck_share": 0.02,
    "tier2_share": 0.05,
    "tier2_rereview_share": 0.08,
    "tier2_first_review_flip": 0.30,
    "tier3_coverage_failed": 0.80,  # corrected / fallback / escalated
    "tier3_coverage_other": 0.15,
    "tier3_sensitivity": 0.65,
    "tier3_false_positive_failed": 0.06,
    "tier3_false_positive_other": 0.01,
    # interventions
    "edit_p_corrected": 0.12,
    "edit_second_p": 0.25,
    "override_p_fallback": 0.15,
    "review_p_completed": 0.003,
    "review_p_escalated": 0.05,
    "review_p_hallucinated": 0.25,
    "intervention_offset_median_s": [90.0, 120.0, 3 * 3600.0, 30.0],
    "intervention_duration_median_s": [40.0, 75.0, 150.0, 420.0],
    "intervention_duration_sigma": [0.6, 0.6, 0.6, 0.7],
    # support tickets
    "ticket_base_per_active_day": 0.02,
    "ticket_deflection_adopter": 0.60,
    "ticket_p_ok": [0.0, 0.003, 0.02, 0.10, 0.02],  # by outcome, not hallucinated
    "ticket_p_halluc": [0.05, 0.03, 0.04, 0.12, 0.04],  # by outcome, hallucinated
    "ticket_handle_median_min": [11.0, 12.0, 16.0],  # base, ai_fail, ai_halluc
    "ticket_handle_sigma": 0.6,
    "ticket_escalated_p": [0.08, 0.15, 0.25],
    "ticket_escalated_handle_mult": 1.8,
    "ticket_resolve_median_h": 6.0,
    "ticket_resolve_sigma": 1.0,
    "ticket_unresolved_share": 0.01,
    # platform cost per day (USD) at 20,000 users; scales with users
    "infra_usd_per_day": [0.7, 1.0, 0.5],
    "infra_noise_sd": 0.05,
}

SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema([
        ("user_id", pa.string()), ("signup_date", pa.date32()),
        ("segment", pa.string()), ("experiment_group", pa.string())]),
    "interactions": pa.schema([
        ("interaction_id", pa.string()), ("ts", pa.timestamp("us")),
        ("user_id", pa.string()), ("session_id", pa.string()),
        ("feature", pa.string()), ("domain", pa.string()),
        ("model_version", pa.string()), ("latency_ms", pa.float64()),
        ("verification_ms", pa.float64()), ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()), ("cost_usd", pa.float64()),
        ("confidence", pa.float64()), ("outcome", pa.string())]),
    "adjudications": pa.schema([
        ("interaction_id", pa.string()), ("tier", pa.int32()),
        ("hallucinated", pa.bool_()), ("ts", pa.timestamp("us"))]),
    "interventions": pa.schema([
        ("intervention_id", pa.string()), ("interaction_id", pa.string()),
        ("ts", pa.timestamp("us")), ("kind", pa.string()), ("duration_s", pa.float64())]),
    "user_activity": pa.schema([("user_id", pa.string()), ("activity_date", pa.date32())]),
    "support_tickets": pa.schema([
        ("ticket_id", pa.string()), ("user_id", pa.string()),
        ("created_ts", pa.timestamp("us")), ("resolved_ts", pa.timestamp("us")),
        ("escalated", pa.bool_()), ("handle_time_min", pa.float64())]),
    "infra_costs": pa.schema([("date", pa.date32()), ("feature", pa.string()), ("cost_usd", pa.float64())]),
}
TABLES = tuple(SCHEMAS)


# --------------------------------------------------------------------------- calendar
class _Window:
    """The data window and every per-day table of the generating process."""

    def __init__(self, end_date: dt.date, days: int, P: dict = PARAMS):
        if days < 1:
            raise ValueError("days must be >= 1")
        self.end = end_date
        self.days = D = int(days)
        self.start = end_date - dt.timedelta(days=D - 1)
        self.dates = np.arange(np.datetime64(self.start, "D"), np.datetime64(end_date, "D") + 1)
        day_num = self.dates.astype(np.int64)  # days since 1970-01-01 (a Thursday)
        self.day_us = day_num * US_PER_DAY
        self.date32 = day_num.astype(np.int32)
        self.weekday = (day_num + 3) % 7  # Monday = 0
        self.dow_mult = np.where(self.weekday >= 5, P["weekend_mult"], 1.0).astype(np.float32)
        frac = np.arange(D) / max(D - 1, 1)
        self.frac = frac
        # scenario dates: v2.4 rolls out over a week from D//3; v3-ctx4k switches on at change_idx
        self.change_idx = D - 45 if D >= 90 else int(D * 0.75)
        self.rollout_idx = D // 3
        self.post = np.arange(D) >= self.change_idx
        self.change_date = self.start + dt.timedelta(days=self.change_idx)
        self.rollout_date = self.start + dt.timedelta(days=self.rollout_idx)
        # domain shares within feature, drifting linearly
        ws = np.array(P["domain_share_start"]).reshape(-1)
        we = np.array(P["domain_share_end"]).reshape(-1)
        self.w = ws[None, :] + (we - ws)[None, :] * frac[:, None]  # (D, 9)
        hr = np.array(P["hr_domain"])
        self.hd = hr[None, :] * np.where(self.post, P["hr_post_change_mult"], 1.0)[:, None]  # (D, 9)
        s = P["primary_feature_stickiness"]
        self.pf = np.full((3, 3), (1 - s) / 2) + np.eye(3) * (s - (1 - s) / 2)  # P(feature | primary)
        pfc = self.pf[:, CELL_FEATURE]  # (3 primary, 9 cells)
        joint = pfc[None, :, :] * self.w[:, None, :]  # (D, 3, 9) P(cell | primary, t)
        self.hbar = (joint * self.hd[:, None, :]).sum(-1)  # (D, 3)
        self.cell_p_h = joint * self.hd[:, None, :] / self.hbar[:, :, None]
        self.cell_p_ok = joint * (1 - self.hd[:, None, :]) / (1 - self.hbar[:, :, None])
        self.ramp = P["lambda_ramp"][0] + (P["lambda_ramp"][1] - P["lambda_ramp"][0]) * frac
        self.coef_h = (self.ramp[:, None] * self.hbar).astype(np.float32)  # (D, 3)
        self.coef_ok = (self.ramp[:, None] * (1 - self.hbar)).astype(np.float32)
        # outcome probabilities O[post, feature, halluc, outcome]
        O = np.zeros((2, 3, 2, 5))
        for k, (pc_key, mix_key) in enumerate((("p_completed_ok_pre", "fail_mix_ok_pre"),
                                               ("p_completed_ok_post", "fail_mix_ok_post"))):
            for f in range(3):
                c = P[pc_key][f]
                O[k, f, 0] = [c] + [(1 - c) * m for m in P[mix_key]]
                O[k, f, 1] = P["outcome_halluc"]
        self.O = O
        # expected AI tickets per hallucinated / ok interaction of a user with primary fu on day t
        kh = O[:, :, 1, :] @ np.array(P["ticket_p_halluc"])  # (2, 3 feature)
        ko = O[:, :, 0, :] @ np.array(P["ticket_p_ok"])
        pi = self.post.astype(int)
        self.K_h = (self.cell_p_h * kh[pi][:, None, CELL_FEATURE]).sum(-1)  # (D, 3)
        self.K_ok = (self.cell_p_ok * ko[pi][:, None, CELL_FEATURE]).sum(-1)
        # full calendar quarters inside the window
        self.quarters = []
        y, q = self.start.year, (self.start.month - 1) // 3 + 1
        while True:
            qs = dt.date(y, 3 * q - 2, 1)
            qe = (dt.date(y + (q == 4), (3 * q) % 12 + 1, 1) - dt.timedelta(days=1))
            if qs > self.end:
                break
            if qs >= self.start and qe <= self.end:
                self.quarters.append((f"{y}Q{q}", qs, qe, (qs - self.start).days, (qe - self.start).days))
            y, q = (y + 1, 1) if q == 4 else (y, q + 1)


# --------------------------------------------------------------------------- users
def _draw_user_base(rng: np.random.Generator, n: int, D: int, P: dict = PARAMS) -> dict:
    """Latent traits that do not depend on the experiment group."""
    pre = rng.random(n) < P["pre_window_share"]
    signup = np.where(pre, -rng.integers(1, P["pre_window_max_age_days"] + 1, n),
                      rng.integers(0, D, n)).astype(np.int32)
    seg = np.searchsorted(np.cumsum(P["segment_share"]), rng.random(n), side="right").clip(0, 2).astype(np.int8)
    a, b = P["engagement_beta"]
    p_raw = rng.beta(a, b, n)
    churn_g = rng.gamma(P["churn_gamma_shape"], 1.0 / P["churn_gamma_shape"], n)
    u_death = rng.random(n)
    u_adopt = rng.random(n)
    lam_g = rng.gamma(P["lambda_gamma_shape"], 1.0 / P["lambda_gamma_shape"], n)
    fu = np.searchsorted(np.cumsum(P["primary_feature_share"]), rng.random(n), side="right").clip(0, 2).astype(np.int8)
    never_verify = rng.random(n) < P["never_verify_user_share"]
    return dict(signup=signup, seg=seg, p_raw=p_raw, churn_g=churn_g, u_death=u_death,
                u_adopt=u_adopt, lam_g=lam_g, fu=fu, never_verify=never_verify)


def _derive(base: dict, group: np.ndarray, P: dict = PARAMS) -> dict:
    """Group-dependent effective parameters (adoption, propensity, churn, intensity)."""
    seg = base["seg"]
    adopter = base["u_adopt"] < np.asarray(P["adopter_share"])[group]
    p = base["p_raw"] * np.asarray(P["engagement_segment_mult"])[seg]
    p = np.where(adopter, p * P["adopter_engagement_mult"], p)
    p = np.minimum(p, P["engagement_cap"]).astype(np.float32)
    eta = np.asarray(P["churn_hazard"])[seg] * base["churn_g"] * np.where(adopter, P["adopter_churn_mult"], 1.0)
    eta = np.clip(eta, 1e-6, 0.5)
    life = np.ceil(np.log(1.0 - base["u_death"]) / np.log1p(-eta)).clip(1, 10**6)  # >= 1 day
    live_from = np.maximum(base["signup"], 0)
    death = (live_from + life).clip(max=10**7).astype(np.int32)
    lam = np.where(adopter, P["lambda_mean"] * base["lam_g"] * np.asarray(P["lambda_segment_mult"])[seg], 0.0)
    return dict(group=group.astype(np.int8), adopter=adopter, p=p, live_from=live_from.astype(np.int32),
                death=death, lam=lam.astype(np.float32),
                ticket_b=(P["ticket_base_per_active_day"] * np.where(adopter, 1 - P["ticket_deflection_adopter"], 1.0)))


def _simulate_days(rng: np.random.Generator, arms: list[dict], base: dict, win: _Window,
                   P: dict = PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """The day loop. ``arms``: k derived parameter sets over the same n base users
    (common random numbers). Returns engaged[D, k, n] and any_halluc[D, k, n].

    Per live user-day: engaged ~ Bernoulli(p * weekday factor * (burn factor if a
    hallucination happened in the previous ``burn_days`` days)), p = signup_day_p on
    the signup day; any hallucination that day ~ Bernoulli(1 - exp(-lam * c[t, fu]))
    given engaged (c = usage ramp x mean hallucination rate of the user's mix)."""
    D = win.days
    n = len(base["signup"])
    k = len(arms)
    live_from = arms[0]["live_from"]  # same for every arm (signup based)
    death = np.stack([a["death"] for a in arms])
    lam = np.stack([a["lam"] for a in arms])
    pw = np.stack([a["p"] for a in arms])
    wd = np.float32(1.0)
    we = np.float32(P["weekend_mult"])
    p_wd = np.zeros((k, n), dtype=np.float32)  # current weekday / weekend probability (0 = not live)
    p_we = np.zeros((k, n), dtype=np.float32)
    by_start = np.argsort(live_from, kind="stable")
    start_cut = np.searchsorted(live_from[by_start], np.arange(D + 1))
    death_orders = [np.argsort(death[a], kind="stable") for a in range(k)]
    death_cuts = [np.searchsorted(death[a][o], np.arange(D + 1)) for a, o in enumerate(death_orders)]
    signup = base["signup"]
    by_signup = np.argsort(signup, kind="stable")
    sign_cut = np.searchsorted(signup[by_signup], np.arange(D + 1))
    fu = base["fu"]
    inv_mb = np.float32(1.0 / P["burn_engagement_mult"])
    sp = np.float32(P["signup_day_p"])
    nburn = int(P["burn_days"])
    last_h = np.full((k, n), -10_000, dtype=np.int32)
    engaged = np.empty((D, k, n), dtype=bool)
    anyh = np.empty((D, k, n), dtype=bool)
    uu = np.empty((k, n), dtype=np.float32)
    burned = np.empty((k, n), dtype=bool)
    x = np.empty((k, n), dtype=np.float32)
    for t in range(D):
        # users becoming live today (signup day, or the first day for earlier signups)
        j = by_start[start_cut[t]:start_cut[t + 1]]
        if len(j):
            p_wd[:, j] = pw[:, j] * wd
            p_we[:, j] = pw[:, j] * we
        for a in range(k):  # users churned before today
            j = death_orders[a][death_cuts[a][t]:death_cuts[a][t + 1]]
            if len(j):
                p_wd[a, j] = 0.0
                p_we[a, j] = 0.0
        u = rng.random(n, dtype=np.float32)
        ex = rng.standard_exponential(n, dtype=np.float32)
        uu[:] = u
        np.greater_equal(last_h, t - nburn, out=burned)
        np.multiply(uu, inv_mb, out=uu, where=burned)  # u / m < p  <=>  u < p * m
        e = engaged[t]
        np.less(uu, p_we if win.weekday[t] >= 5 else p_wd, out=e)
        js = by_signup[sign_cut[t]:sign_cut[t + 1]]
        if len(js):
            e[:, js] = (u[js] < sp)[None, :]
        np.multiply(lam, win.coef_h[t][fu], out=x)
        h = anyh[t]
        np.less(ex, x, out=h)
        h &= e
        np.putmask(last_h, h, t)
    return engaged, anyh


def _ztp(rng: np.random.Generator, mu: np.ndarray) -> np.ndarray:
    """Zero-truncated Poisson(mu) by inverse CDF (mu is small here)."""
    u = rng.random(len(mu))
    k = np.ones(len(mu), dtype=np.int64)
    denom = -np.expm1(-mu)
    pk = np.exp(-mu) * mu / np.where(denom > 0, denom, 1.0)
    cdf = pk.copy()
    for j in range(2, 60):
        m = u > cdf
        if not m.any():
            break
        k[m] += 1
        pk = pk * mu / j
        cdf += pk
    return k


def _zt_mean(mu: np.ndarray) -> np.ndarray:
    """E[K | K >= 1] for K ~ Poisson(mu)."""
    d = -np.expm1(-mu)
    return np.where(d > 0, mu / np.where(d > 0, d, 1.0), 1.0)


def _lognormal_mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2)


def _handle_means(P: dict = PARAMS) -> np.ndarray:
    """Expected handle time (minutes) per ticket type: base, ai_fail, ai_halluc."""
    s = P["ticket_handle_sigma"]
    m = P["ticket_escalated_handle_mult"]
    return np.array([_lognormal_mean(P["ticket_handle_median_min"][i], s) * (1 + (m - 1) * P["ticket_escalated_p"][i])
                     for i in range(3)])


# --------------------------------------------------------------------------- causal truth
@functools.lru_cache(maxsize=8)
def _causal_truth(start: dt.date, days: int) -> dict:
    """Population truth (treatment - holdout) per full quarter, by Monte-Carlo of the
    generating process with common random numbers and Rao-Blackwellized counts."""
    win = _Window(start + dt.timedelta(days=days - 1), days)
    if not win.quarters:
        return {}
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([MC_SEED, days, start.toordinal()])))
    M = MC_USERS
    base = _draw_user_base(rng, M, days)
    armT = _derive(base, np.zeros(M, dtype=np.int8))
    armH = _derive(base, np.ones(M, dtype=np.int8))
    arms = [armT, armH]
    engaged, anyh = _simulate_days(rng, arms, base, win)
    hm = _handle_means()
    fu = base["fu"]
    lam = np.stack([a["lam"] for a in arms]).astype(np.float64)  # (2, M)
    tb = np.stack([a["ticket_b"] for a in arms])
    last = days - 1
    out = {}
    for label, qs_d, qe_d, qs, qe in win.quarters:
        pop = base["signup"] <= qe  # (M,)
        npop = pop.sum()
        eq = engaged[qs:qe + 1]  # (Dq, 2, M)
        # E[tickets | path] = sum_t engaged*b + engaged*lam*coef_ok*K_ok + anyh*E[n_h | n_h>0]*K_h
        n_eng = eq.sum(0)
        g_ok = (win.coef_ok[qs:qe + 1] * win.K_ok[qs:qe + 1]).astype(np.float32)  # (Dq, 3)
        s_ok = np.empty((2, M))
        for a in range(2):
            w = eq[:, a, :].T.astype(np.float32) @ g_ok  # (M, 3)
            s_ok[a] = w[np.arange(M), fu]
        base_t = n_eng * tb
        ok_t = lam * s_ok
        tq, aq, iq = np.nonzero(anyh[qs:qe + 1])
        mu_h = lam[aq, iq] * win.coef_h[qs + tq, fu[iq]]
        hv = _zt_mean(mu_h) * win.K_h[qs + tq, fu[iq]]
        halluc_t = np.zeros((2, M))
        np.add.at(halluc_t, (aq, iq), hv)
        tick = base_t + ok_t + halluc_t
        hours = (base_t * hm[0] + ok_t * hm[1] + halluc_t * hm[2]) / 60.0
        # retention: first active date in the quarter, active again within 7 days
        active = eq.any(0)
        anchor = qs + eq.argmax(0)
        elig = active & (anchor + 7 <= last) & pop[None, :]
        ret = np.zeros_like(elig)
        ii = np.arange(M)
        for d in range(1, 8):
            idx = np.minimum(anchor + d, last)
            for a in range(2):
                ret[a] |= engaged[idx[a], a, ii]
        ret &= elig
        res = {}
        for name, y, w in (("tickets_per_user", tick, None), ("agent_hours_per_user", hours, None),
                           ("retained_7d_share", ret.astype(float), elig)):
            if w is None:
                mt, mh = y[0][pop].mean(), y[1][pop].mean()
                dd = (y[0] - y[1])[pop]
                se = dd.std(ddof=1) / math.sqrt(npop)
            else:
                mt, mh = y[0][w[0]].mean(), y[1][w[1]].mean()
                # delta-method SE of the difference of two ratio estimators (paired users)
                r0 = np.where(w[0], y[0] - mt, 0.0) / w[0][pop].mean()
                r1 = np.where(w[1], y[1] - mh, 0.0) / w[1][pop].mean()
                se = (r0 - r1)[pop].std(ddof=1) / math.sqrt(npop)
            res[name] = {"treatment": float(mt), "holdout": float(mh), "diff": float(mt - mh),
                         "mc_se_diff": float(se)}
        res["quarter_start"] = qs_d.isoformat()
        res["quarter_end"] = qe_d.isoformat()
        res["population_share_of_simulated"] = float(npop / M)
        out[label] = res
    return out


# --------------------------------------------------------------------------- helpers
def _ids(prefix: str, nums: np.ndarray, width: int) -> pa.Array:
    s = pc.utf8_lpad(pc.cast(pa.array(nums, type=pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), s, pa.scalar(""))


def _labels(labels, codes: np.ndarray) -> pa.Array:
    return pc.take(pa.array(list(labels), type=pa.string()), pa.array(codes.astype(np.int32)))


def _ts(us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(us.astype(np.int64), type=pa.timestamp("us"), mask=mask)


def _tod_us(rng: np.random.Generator, n: int) -> np.ndarray:
    s = np.where(rng.random(n) < 0.75, rng.normal(15 * 3600, 3.2 * 3600, n), rng.random(n) * 86400)
    s = np.mod(s, 86400.0)
    return np.minimum((s * 1e6).astype(np.int64), US_PER_DAY - 1)


def _cat(rng: np.random.Generator, cdf_rows: np.ndarray) -> np.ndarray:
    """Sample one category per row from rows of cumulative probabilities."""
    u = rng.random(len(cdf_rows))
    return np.minimum((u[:, None] >= cdf_rows[:, :-1]).sum(1), cdf_rows.shape[1] - 1)


def _lognormal(rng, median, sigma, n=None):
    return np.asarray(median) * np.exp(rng.normal(0.0, 1.0, n) * np.asarray(sigma))


class _Writer:
    """One Parquet file per table; one row group (or more) per block."""

    def __init__(self, out_dir: pathlib.Path):
        self.out_dir = out_dir
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows = {t: 0 for t in TABLES}

    def write(self, name: str, table: pa.Table) -> None:
        table = table.cast(SCHEMAS[name])
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.out_dir / f"{name}.parquet", SCHEMAS[name],
                                                  compression="snappy")
        if table.num_rows:
            self.writers[name].write_table(table, row_group_size=1_000_000)
        self.rows[name] += table.num_rows

    def close(self) -> None:
        for name in TABLES:
            if name not in self.writers:
                self.writers[name] = pq.ParquetWriter(self.out_dir / f"{name}.parquet", SCHEMAS[name],
                                                      compression="snappy")
            self.writers[name].close()


class _Acc:
    """Additive accumulators for the realized metrics written into truths.json."""

    TTA_EDGES = np.concatenate([[0.0], np.geomspace(1e-3, 1e5, 40_001)])

    def __init__(self, win: _Window, exact_tta: bool = True):
        self.win = win
        self.exact_tta = exact_tta  # False: TTA quantiles from a fine histogram (bounded memory)
        self.periods = ([(lab, qs, qe) for lab, _, _, qs, qe in win.quarters] + [("all", 0, win.days - 1)]
                        + [("before_change", 0, win.change_idx - 1), ("after_change", win.change_idx, win.days - 1)])
        self.periods = [p for p in self.periods if p[2] >= p[1]]
        self.s: dict[str, dict[str, float]] = {p[0]: {} for p in self.periods}
        self.tta: dict[str, list] = {p[0]: [] for p in self.periods}
        self.extra: dict[str, float] = {}

    def add(self, period: str, key: str, v: float) -> None:
        d = self.s[period]
        d[key] = d.get(key, 0.0) + float(v)

    def add_extra(self, key: str, v: float) -> None:
        self.extra[key] = self.extra.get(key, 0.0) + float(v)


# --------------------------------------------------------------------------- one block of users
def _block(rng: np.random.Generator, win: _Window, n: int, uid0: int, ids: dict, wr: _Writer,
           acc: _Acc, bad: dict, bad_rows: bool, uid_width: int, P: dict = PARAMS) -> None:
    D = win.days
    base = _draw_user_base(rng, n, D)
    group = np.searchsorted(np.cumsum(P["group_share"]), rng.random(n), side="right").clip(0, 2).astype(np.int8)
    arm = _derive(base, group)
    engaged3, anyh3 = _simulate_days(rng, [arm], base, win)
    engaged, anyh = engaged3[:, 0, :], anyh3[:, 0, :]
    del engaged3, anyh3
    fu_user = base["fu"]
    uid_arr = _ids("u", np.arange(uid0, uid0 + n) + 1, uid_width)

    # users
    wr.write("users", pa.table({
        "user_id": uid_arr,
        "signup_date": pa.array((win.date32[0] + base["signup"]).astype(np.int32), type=pa.date32()),
        "segment": _labels(SEGMENTS, base["seg"]),
        "experiment_group": pa.array(np.array(["treatment", "holdout", ""], dtype=object)[group],
                                     type=pa.string(), mask=group == 2),
    }))

    # engaged user-days -> interaction counts
    ct, cu = np.nonzero(engaged)  # sorted by day, then user
    ncell = len(ct)
    cell_h = anyh[ct, cu]
    lam_c = arm["lam"][cu].astype(np.float64)
    fu_c = fu_user[cu]
    n_ok = rng.poisson(lam_c * win.coef_ok[ct, fu_c])
    n_h = np.zeros(ncell, dtype=np.int64)
    hi = np.nonzero(cell_h)[0]
    n_h[hi] = _ztp(rng, lam_c[hi] * win.coef_h[ct[hi], fu_c[hi]])
    n_int = n_ok + n_h

    # user_activity: every engaged day; a few interaction days lack the activity row
    keep = ~((n_int > 0) & (rng.random(ncell) < 0.03))
    act_u, act_t = cu[keep], ct[keep]
    order = np.lexsort((act_t, act_u))
    act_u, act_t = act_u[order], act_t[order]
    n_act_dup = (len(act_u) // 100_000) if bad_rows else 0
    if n_act_dup:
        j = rng.choice(len(act_u), n_act_dup, replace=False)
        act_u, act_t = np.concatenate([act_u, act_u[j]]), np.concatenate([act_t, act_t[j]])
        bad["user_activity_duplicate_rows"] += n_act_dup
    wr.write("user_activity", pa.table({
        "user_id": pc.take(uid_arr, pa.array(act_u)),
        "activity_date": pa.array(win.date32[act_t], type=pa.date32())}))
    acc.add_extra("user_activity_rows_unique", keep.sum())

    # expand interactions
    N = int(n_int.sum())
    rep = np.repeat(np.arange(ncell), n_int)
    start = np.cumsum(n_int) - n_int
    is_h = (np.arange(N) - start[rep]) < n_h[rep]
    t_i = ct[rep]
    u_i = cu[rep]
    ts = win.day_us[t_i] + _tod_us(rng, N)
    o = np.argsort(ts, kind="stable")
    ts, t_i, u_i, is_h = ts[o], t_i[o], u_i[o], is_h[o]
    del rep, o
    fu_i = fu_user[u_i]
    post = win.post[t_i]
    # feature/domain cell conditional on the hallucination flag
    cdf_h = np.cumsum(win.cell_p_h, -1)
    cdf_ok = np.cumsum(win.cell_p_ok, -1)
    rows = np.where(is_h[:, None], cdf_h[t_i, fu_i], cdf_ok[t_i, fu_i])
    cell = _cat(rng, rows)
    del rows
    feat = CELL_FEATURE[cell]
    # model version: v2.3 -> v2.4 (7-day ramp) -> v3-ctx4k from the change date
    ramp_share = np.clip((t_i - win.rollout_idx + 1) / 8.0, 0.0, 1.0)
    mv = np.where(rng.random(N) < ramp_share, 1, 0)
    mv = np.where(post, 2, mv).astype(np.int8)
    # outcome
    ocdf = np.cumsum(win.O, -1)
    outc = _cat(rng, ocdf[post.astype(int), feat, is_h.astype(int)])
    completed = outc == 0
    # tokens
    drift = 1.0 + P["input_tokens_drift"] * win.frac[t_i]
    itok = _lognormal(rng, np.asarray(P["input_tokens_median"])[feat] * drift,
                      np.asarray(P["input_tokens_sigma"])[feat], N)
    itok = np.minimum(np.maximum(np.rint(itok), 5), np.where(post, P["context_cap_post"], P["context_cap_pre"]))
    itok = itok.astype(np.int64)
    otok = np.maximum(np.rint(_lognormal(rng, np.asarray(P["output_tokens_median"])[feat],
                                         np.asarray(P["output_tokens_sigma"])[feat], N)), 1).astype(np.int64)
    pin = np.array([P["price_in_per_mtok"][m] for m in MODEL_VERSIONS])[mv]
    pout = np.array([P["price_out_per_mtok"][m] for m in MODEL_VERSIONS])[mv]
    cost = (itok * pin + otok * pout) / 1e6
    lat = (P["latency_base_ms"] + P["latency_per_out_token_ms"] * otok + P["latency_per_in_token_ms"] * itok)
    lat = lat * np.exp(rng.normal(0, P["latency_sigma"], N)) * np.where(post, P["latency_post_mult"], 1.0)
    ver_null = base["never_verify"][u_i] | (rng.random(N) < P["no_verify_interaction_share"])
    ver = _lognormal(rng, P["verification_median_ms"] * np.asarray(P["verification_feature_mult"])[feat]
                     * np.where(post, P["verification_post_mult"], 1.0), P["verification_sigma"], N)
    # confidence (over-confident: mean ~0.89 while ~81% of outputs are valid)
    ck = np.where(is_h, 2, np.where(completed, 0, 1))
    cm = np.asarray(P["confidence_beta_mean"])[ck]
    cc = np.asarray(P["confidence_beta_conc"])[ck]
    conf = rng.beta(cm * cc, (1 - cm) * cc)
    conf_null = rng.random(N) < P["confidence_null_share"]
    # sessions: user x day x 2-hour bucket
    skey = (u_i.astype(np.int64) * D + t_i) * 12 + (ts - win.day_us[t_i]) // (2 * 3600 * 10**6)
    _, sidx = np.unique(skey, return_inverse=True)
    sess_null = rng.random(N) < P["session_null_share"]
    iid_num = ids["interaction"] + 1 + np.arange(N)
    ids["interaction"] += N
    sess_num = ids["session"] + 1 + sidx
    ids["session"] += int(sidx.max()) + 1 if N else 0
    iid_arr = _ids("i", iid_num, 9)

    inter = pa.table({
        "interaction_id": iid_arr,
        "ts": _ts(ts),
        "user_id": pc.take(uid_arr, pa.array(u_i)),
        "session_id": pc.if_else(pa.array(sess_null), pa.scalar(None, pa.string()), _ids("s", sess_num, 9)),
        "feature": _labels(FEATURES, feat),
        "domain": _labels([c[1] for c in CELLS], cell),
        "model_version": _labels(MODEL_VERSIONS, mv),
        "latency_ms": pa.array(np.round(lat, 1)),
        "verification_ms": pa.array(np.round(ver, 1), mask=ver_null),
        "input_tokens": pa.array(itok),
        "output_tokens": pa.array(otok),
        "cost_usd": pa.array(cost),
        "confidence": pa.array(np.round(conf, 4), mask=conf_null),
        "outcome": _labels(OUTCOMES, outc),
    }, schema=SCHEMAS["interactions"])
    extra_rows = []
    if bad_rows and N:
        n_dup = N // 40_000
        n_orph = N // 100_000
        if n_dup:
            extra_rows.append(inter.take(pa.array(np.sort(rng.choice(N, n_dup, replace=False)))))
            bad["interactions_duplicate_rows"] += n_dup
        if n_orph:
            orph = inter.take(pa.array(np.sort(rng.choice(N, n_orph, replace=False))))
            onum = ids["interaction"] + 1 + np.arange(n_orph)
            ids["interaction"] += n_orph
            oid = _ids("u", ids["orphan_user"] + np.arange(n_orph), uid_width)
            ids["orphan_user"] += n_orph
            orph = orph.set_column(0, "interaction_id", _ids("i", onum, 9))
            orph = orph.set_column(2, "user_id", oid)
            extra_rows.append(orph)
            bad["interactions_orphan_user"] += n_orph
    wr.write("interactions", pa.concat_tables([inter] + extra_rows) if extra_rows else inter)
    del inter, extra_rows

    # adjudications
    u = rng.random(N)
    t1 = rng.random(N) < P["tier1_coverage"]
    v1 = np.where(is_h, u < P["tier1_sensitivity"], u < P["tier1_false_positive"])
    ts1 = ts + lat.astype(np.int64) * 1000 + (rng.uniform(1, 60, N) * 1e6).astype(np.int64)
    re1 = t1 & (rng.random(N) < P["tier1_recheck_share"])
    u = rng.random(N)
    v1b = np.where(is_h, u < P["tier1_sensitivity"], u < P["tier1_false_positive"])
    ts1b = ts1 + (rng.uniform(1, 48, N) * 3600e6).astype(np.int64)
    t2 = rng.random(N) < P["tier2_share"]
    re2 = t2 & (rng.random(N) < P["tier2_rereview_share"])
    ts2 = ts + (rng.uniform(1, 7, N) * 86400e6).astype(np.int64)
    ts2b = ts2 + (rng.uniform(1, 5, N) * 86400e6).astype(np.int64)
    v2a = is_h ^ (rng.random(N) < P["tier2_first_review_flip"])  # a first review that got re-reviewed
    failed = (outc == 1) | (outc == 2) | (outc == 3)
    t3 = rng.random(N) < np.where(failed, P["tier3_coverage_failed"], P["tier3_coverage_other"])
    u = rng.random(N)
    v3 = np.where(is_h, u < P["tier3_sensitivity"],
                  u < np.where(completed, P["tier3_false_positive_other"], P["tier3_false_positive_failed"]))
    ts3 = ts + (rng.uniform(1, 3, N) * 86400e6).astype(np.int64)
    parts = [  # (mask, tier, verdict, ts)
        (t1, 1, v1, ts1), (re1, 1, v1b, ts1b),
        (t2 & ~re2, 2, is_h, ts2), (re2, 2, v2a, ts2), (re2, 2, is_h, ts2b),
        (t3, 3, v3, ts3)]
    idx = np.concatenate([np.nonzero(m)[0] for m, *_ in parts])
    tier = np.concatenate([np.full(m.sum(), tr, np.int32) for m, tr, *_ in parts])
    verd = np.concatenate([v[m] for m, _, v, _ in parts])
    ats = np.concatenate([x[m] for m, _, _, x in parts])
    adj = pa.table({"interaction_id": pc.take(iid_arr, pa.array(idx)), "tier": pa.array(tier),
                    "hallucinated": pa.array(verd), "ts": _ts(ats)}, schema=SCHEMAS["adjudications"])
    n_unk = min(2, len(idx) // 2000) if bad_rows else 0
    if n_unk:
        j = rng.choice(len(idx), n_unk, replace=False)
        unk = adj.take(pa.array(j))
        unk = unk.set_column(0, "interaction_id",
                             _ids("i", np.asarray([900_000_000 + ids["unknown_adj"] + k for k in range(n_unk)]), 9))
        ids["unknown_adj"] += n_unk
        adj = pa.concat_tables([adj, unk])
        bad["adjudications_unknown_interaction"] += n_unk
    wr.write("adjudications", adj)
    del adj
    # final verdict (latest tier 2, else latest tier 1)
    has_final = t2 | t1
    final_h = np.where(t2, is_h, np.where(re1, v1b, v1)) & has_final

    # interventions
    c_edit = np.where(outc == 1, (rng.random(N) < P["edit_p_corrected"])
                      * (1 + (rng.random(N) < P["edit_second_p"])), 0)
    c_over = ((outc == 2) & (rng.random(N) < P["override_p_fallback"])).astype(np.int64)
    c_esc = (outc == 3).astype(np.int64)
    c_rev = (((outc == 0) & (rng.random(N) < P["review_p_completed"])).astype(np.int64)
             + ((outc == 3) & (rng.random(N) < P["review_p_escalated"]))
             + (is_h & (rng.random(N) < P["review_p_hallucinated"])))
    counts = np.stack([c_edit, c_over, c_rev, c_esc]).astype(np.int64)  # (4, N)
    n_iv_per = counts.sum(0)
    iv_i = np.repeat(np.arange(N), n_iv_per)
    # kinds in (interaction, kind) order: repeat kind codes by count per interaction
    iv_kind = np.repeat(np.tile(np.arange(4), N), counts.T.reshape(-1))
    niv = len(iv_i)
    off = _lognormal(rng, np.asarray(P["intervention_offset_median_s"])[iv_kind], 0.8, niv)
    dur = _lognormal(rng, np.asarray(P["intervention_duration_median_s"])[iv_kind],
                     np.asarray(P["intervention_duration_sigma"])[iv_kind], niv)
    iv_ts = ts[iv_i] + (off * 1e6).astype(np.int64)
    ivnum = ids["intervention"] + 1 + np.arange(niv)
    ids["intervention"] += niv
    wr.write("interventions", pa.table({
        "intervention_id": _ids("v", ivnum, 9),
        "interaction_id": pc.take(iid_arr, pa.array(iv_i)),
        "ts": _ts(iv_ts), "kind": _labels(KINDS, iv_kind), "duration_s": pa.array(np.round(dur, 1))},
        schema=SCHEMAS["interventions"]))

    # support tickets: base (per active day) + caused by failed / hallucinated outputs
    bt = rng.random(ncell) < arm["ticket_b"][cu]
    b_u, b_t = cu[bt], ct[bt]
    b_ts = win.day_us[b_t] + _tod_us(rng, len(b_u))
    kappa = np.where(is_h, np.asarray(P["ticket_p_halluc"])[outc], np.asarray(P["ticket_p_ok"])[outc])
    at = rng.random(N) < kappa
    a_i = np.nonzero(at)[0]
    day_end = win.day_us[t_i[a_i]] + US_PER_DAY - 1
    a_ts = ts[a_i] + (rng.random(len(a_i)) * (day_end - ts[a_i])).astype(np.int64)
    tk_u = np.concatenate([b_u, u_i[a_i]])
    tk_ts = np.concatenate([b_ts, a_ts])
    tk_t = np.concatenate([b_t, t_i[a_i]])
    tk_type = np.concatenate([np.zeros(len(b_u), np.int64), np.where(is_h[a_i], 2, 1)])
    o = np.argsort(tk_ts, kind="stable")
    tk_u, tk_ts, tk_t, tk_type = tk_u[o], tk_ts[o], tk_t[o], tk_type[o]
    ntk = len(tk_u)
    esc = rng.random(ntk) < np.asarray(P["ticket_escalated_p"])[tk_type]
    handle = _lognormal(rng, np.asarray(P["ticket_handle_median_min"])[tk_type], P["ticket_handle_sigma"], ntk)
    handle = handle * np.where(esc, P["ticket_escalated_handle_mult"], 1.0)
    delay = _lognormal(rng, P["ticket_resolve_median_h"], P["ticket_resolve_sigma"], ntk) * np.where(esc, 3.0, 1.0)
    res_ts = tk_ts + (delay * 3600e6).astype(np.int64)
    extract_us = win.day_us[-1] + 3 * US_PER_DAY  # tickets still open when the data were extracted
    unresolved = (res_ts > extract_us) | (rng.random(ntk) < P["ticket_unresolved_share"])
    tnum = ids["ticket"] + 1 + np.arange(ntk)
    ids["ticket"] += ntk
    wr.write("support_tickets", pa.table({
        "ticket_id": _ids("t", tnum, 8), "user_id": pc.take(uid_arr, pa.array(tk_u)),
        "created_ts": _ts(tk_ts), "resolved_ts": _ts(res_ts, mask=unresolved),
        "escalated": pa.array(esc), "handle_time_min": pa.array(np.round(handle, 2))},
        schema=SCHEMAS["support_tickets"]))

    # ---------------- realized statistics (for truths.json)
    valid = completed & ~final_h
    intday = np.zeros_like(engaged)
    intday[ct[n_int > 0], cu[n_int > 0]] = True
    tta = (lat + ver) / 1000.0
    tta_ok = valid & ~ver_null
    n_iv_i = n_iv_per
    for label, qs, qe in acc.periods:
        m = (t_i >= qs) & (t_i <= qe)
        acc.add(label, "interactions", m.sum())
        acc.add(label, "completed", (completed & m).sum())
        acc.add(label, "adjudicated", (has_final & m).sum())
        acc.add(label, "hallucinated", (final_h & m).sum())
        acc.add(label, "latent_hallucinated", (is_h & m).sum())
        acc.add(label, "valid", (valid & m).sum())
        acc.add(label, "interventions", n_iv_i[m].sum())
        acc.add(label, "cost_usd", cost[m].sum())
        x = tta[m & tta_ok]
        if acc.exact_tta:
            acc.tta[label].append(x)
        else:
            h = np.histogram(x, bins=acc.TTA_EDGES)[0]
            acc.tta[label] = [acc.tta[label][0] + h] if acc.tta[label] else [h]
        # retention (overall slice)
        last = D - 1
        aq = intday[qs:qe + 1]
        eq = engaged[qs:qe + 1]
        ai = aq.any(0)
        act = eq.any(0)
        a_anchor = qs + aq.argmax(0)
        n_anchor = qs + eq.argmax(0)
        for grp, mask, anc in (("ai", ai, a_anchor), ("non", act & ~ai, n_anchor)):
            el = mask & (anc + 7 <= last)
            r = np.zeros(n, dtype=bool)
            for d in range(1, 8):
                r |= engaged[np.minimum(anc + d, last), np.arange(n)]
            acc.add(label, f"ret_{grp}_n", el.sum())
            acc.add(label, f"ret_{grp}_retained", (r & el).sum())
    # causal quantities, realized (treatment / holdout sample means per quarter)
    for label, qs_d, qe_d, qs, qe in win.quarters:
        pop = base["signup"] <= qe
        tmask = (tk_t >= qs) & (tk_t <= qe)
        tc = np.bincount(tk_u[tmask], minlength=n)
        th = np.bincount(tk_u[tmask], weights=handle[tmask], minlength=n) / 60.0
        eq = engaged[qs:qe + 1]
        act = eq.any(0)
        anc = qs + eq.argmax(0)
        el = act & (anc + 7 <= D - 1) & pop
        r = np.zeros(n, dtype=bool)
        for d in range(1, 8):
            r |= engaged[np.minimum(anc + d, D - 1), np.arange(n)]
        for g, gname in ((0, "treatment"), (1, "holdout")):
            gm = pop & (group == g)
            acc.add_extra(f"{label}|{gname}|n", gm.sum())
            acc.add_extra(f"{label}|{gname}|tickets", tc[gm].sum())
            acc.add_extra(f"{label}|{gname}|hours", th[gm].sum())
            acc.add_extra(f"{label}|{gname}|ret_n", (el & (group == g)).sum())
            acc.add_extra(f"{label}|{gname}|ret_k", (el & r & (group == g)).sum())
    # per-domain realized HR (final verdict) and latent HR, pre/post change
    for c in range(9):
        mc = cell == c
        for per, pm in (("pre", ~post), ("post", post)):
            acc.add_extra(f"dom|{c}|{per}|n", (mc & pm).sum())
            acc.add_extra(f"dom|{c}|{per}|adj", (mc & pm & has_final).sum())
            acc.add_extra(f"dom|{c}|{per}|fh", (mc & pm & final_h).sum())
            acc.add_extra(f"dom|{c}|{per}|lh", (mc & pm & is_h).sum())
            acc.add_extra(f"dom|{c}|{per}|t2n", (mc & pm & t2).sum())
            acc.add_extra(f"dom|{c}|{per}|t2h", (mc & pm & t2 & is_h).sum())
    for per, pm in (("pre", ~post), ("post", post)):
        acc.add_extra(f"tcr|{per}|n", pm.sum())
        acc.add_extra(f"tcr|{per}|completed", (completed & pm).sum())
        # expected P(completed) given day, feature and domain (integrating the hallucination draw)
        hdc = win.hd[t_i, cell]
        exp_c = hdc * win.O[post.astype(int), feat, 1, 0] + (1 - hdc) * win.O[post.astype(int), feat, 0, 0]
        acc.add_extra(f"tcr|{per}|expected", exp_c[pm].sum())
    # calibration (ECE, 10 equal-width bins) on the tier-2 sample: labels "not hallucinated" and "valid"
    cm_ok = t2 & ~conf_null
    bins = np.minimum((conf * 10).astype(int), 9)
    for lab, y in (("not_hallucinated", ~is_h), ("valid", completed & ~is_h)):
        for b in range(10):
            mb = cm_ok & (bins == b)
            acc.add_extra(f"ece|{lab}|{b}|n", mb.sum())
            acc.add_extra(f"ece|{lab}|{b}|conf", conf[mb].sum())
            acc.add_extra(f"ece|{lab}|{b}|y", y[mb].sum())
    for per, pm in (("pre", ~post), ("post", post)):
        acc.add_extra(f"cost|{per}|n", pm.sum())
        acc.add_extra(f"cost|{per}|usd", cost[pm].sum())
        acc.add_extra(f"tok|{per}|in", itok[pm].sum())
    # input drift: first vs last 4 weeks
    for lab, m in (("first28", t_i < 28), ("last28", t_i >= D - 28)):
        acc.add_extra(f"drift|{lab}|n", m.sum())
        acc.add_extra(f"drift|{lab}|in", itok[m].sum())
        for c in range(9):
            acc.add_extra(f"drift|{lab}|cell{c}", (m & (cell == c)).sum())


# --------------------------------------------------------------------------- public API
_DEMO = config.pipeline()["demo"]  # config/pipeline.toml [demo]: the defaults of every entry point
DEFAULT_SEED, DEFAULT_USERS, DEFAULT_DAYS = int(_DEMO["seed"]), int(_DEMO["users"]), int(_DEMO["days"])


def generate(out_dir: pathlib.Path, seed: int = DEFAULT_SEED, users: int = DEFAULT_USERS, days: int = DEFAULT_DAYS,
             end_date: dt.date = dt.date(2026, 9, 30), interactions: int | None = None,
             bad_rows: bool = True) -> dict:
    """Write the SPEC §2 tables as Parquet into ``out_dir`` plus ``truths.json``.

    ``interactions=N`` (benchmark mode) sets users to about N / 28; users are
    generated in blocks of 50,000 and every table is streamed in row groups, so
    memory stays bounded. Returns the truths dict (also written to truths.json).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if interactions is not None:
        users = max(100, int(round(interactions / 28)))
    users = int(users)
    if users < 1:
        raise ValueError("users must be >= 1")
    win = _Window(end_date, days)
    n_blocks = max(1, math.ceil(users / BLOCK_USERS))
    uid_width = max(7, len(str(users + 10**6)))
    ids = {"interaction": 0, "session": 0, "intervention": 0, "ticket": 0, "unknown_adj": 0,
           "orphan_user": users + 500_001}
    bad = {"interactions_duplicate_rows": 0, "interactions_orphan_user": 0,
           "user_activity_duplicate_rows": 0, "adjudications_unknown_interaction": 0}
    wr = _Writer(out_dir)
    acc = _Acc(win, exact_tta=n_blocks == 1)
    # the causal truth (Monte-Carlo, cached per window) runs beside the data blocks:
    # numpy releases the GIL in the heavy loops, so the two overlap on 2 cores
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    causal_future = pool.submit(_causal_truth, win.start, win.days)
    for b in range(n_blocks):
        n = min(BLOCK_USERS, users - b * BLOCK_USERS)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b,))))
        _block(rng, win, n, b * BLOCK_USERS, ids, wr, acc, bad, bad_rows, uid_width)
    # infra_costs: one row per date x feature
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(10**6,))))
    scale = users / 20_000
    D = win.days
    infra = (np.asarray(PARAMS["infra_usd_per_day"])[None, :] * scale
             * (1 + PARAMS["infra_noise_sd"] * rng.standard_normal((D, 3))))
    infra = np.round(np.maximum(infra, 0), 4)
    wr.write("infra_costs", pa.table({
        "date": pa.array(np.repeat(win.date32, 3), type=pa.date32()),
        "feature": _labels(FEATURES, np.tile(np.arange(3), D)),
        "cost_usd": pa.array(infra.reshape(-1))}, schema=SCHEMAS["infra_costs"]))
    wr.close()
    causal = causal_future.result()
    pool.shutdown()

    truths = _truths(win, seed, users, interactions, bad, wr.rows, acc, infra, n_blocks, bad_rows, causal)
    (out_dir / "truths.json").write_text(json.dumps(truths, indent=2, sort_keys=False))
    return truths


# --------------------------------------------------------------------------- truths
def _r(x, nd=6):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, nd)


def _hist_quantile(counts: np.ndarray, edges: np.ndarray, q: float) -> float | None:
    total = counts.sum()
    if total == 0:
        return None
    c = np.cumsum(counts)
    i = int(np.searchsorted(c, q * total))
    lo, hi = edges[i], edges[i + 1]
    prev = c[i - 1] if i else 0
    return _r(lo + (hi - lo) * (q * total - prev) / max(counts[i], 1), 4)


def _truths(win: _Window, seed, users, interactions, bad, rows, acc: _Acc, infra, n_blocks, bad_rows,
            causal: dict) -> dict:
    P = PARAMS
    E = acc.extra
    dom_names = [c[1] for c in CELLS]
    hr_pre = {d: P["hr_domain"][c] for c, d in enumerate(dom_names)}
    hr_post = {d: P["hr_domain"][c] * P["hr_post_change_mult"] for c, d in enumerate(dom_names)}

    def measured_hr(h):  # expected final-verdict HR given the latent rate h
        s2, c1 = P["tier2_share"], P["tier1_coverage"]
        t1 = P["tier1_sensitivity"] * h + P["tier1_false_positive"] * (1 - h)
        return (s2 * h + (1 - s2) * c1 * t1) / (s2 + (1 - s2) * c1)

    def div(a, b):
        return _r(a / b) if b else None

    # realized L6 per period
    infra_by_day = infra.sum(1)
    realized = {}
    for label, qs, qe in acc.periods:
        s = acc.s[label]
        if acc.exact_tta:
            tta = np.concatenate(acc.tta[label]) if acc.tta[label] else np.array([])
            p50 = _r(np.quantile(tta, 0.5), 4) if len(tta) else None
            p90 = _r(np.quantile(tta, 0.9), 4) if len(tta) else None
        else:
            p50 = _hist_quantile(acc.tta[label][0], acc.TTA_EDGES, 0.5) if acc.tta[label] else None
            p90 = _hist_quantile(acc.tta[label][0], acc.TTA_EDGES, 0.9) if acc.tta[label] else None
        inf = infra_by_day[qs:qe + 1].sum()
        rd = None
        if s.get("ret_ai_n", 0) >= 30 and s.get("ret_non_n", 0) >= 30:
            rd = 100 * (s["ret_ai_retained"] / s["ret_ai_n"] - s["ret_non_retained"] / s["ret_non_n"])
        realized[label] = {
            "interactions": int(s.get("interactions", 0)),
            "tcr": div(s.get("completed", 0), s.get("interactions", 0)),
            "hr": div(s.get("hallucinated", 0), s.get("adjudicated", 0)),
            "hr_coverage": div(s.get("adjudicated", 0), s.get("interactions", 0)),
            "hr_latent": div(s.get("latent_hallucinated", 0), s.get("interactions", 0)),
            "tta_p50_s": p50,
            "tta_p90_s": p90,
            "hitl_per_100": div(100 * s.get("interventions", 0), s.get("interactions", 0)),
            "retention_delta_pts": _r(rd, 4),
            "retention_ai_users": int(s.get("ret_ai_n", 0)),
            "retention_non_ai_users": int(s.get("ret_non_n", 0)),
            "cpvo_usd": div(s.get("cost_usd", 0) + inf, s.get("valid", 0)),
            "inference_cost_usd": _r(s.get("cost_usd", 0), 4),
            "infra_cost_usd": _r(inf, 4),
            "valid_outputs": int(s.get("valid", 0)),
        }
        if n_blocks > 1:
            realized[label]["note"] = ("benchmark mode: TTA quantiles approximate (histogram, <0.05% "
                                       "relative error); last active date taken as the end date")

    causal_realized = {}
    for label, *_ in win.quarters:
        cr = {}
        for g in ("treatment", "holdout"):
            n = E.get(f"{label}|{g}|n", 0)
            rn = E.get(f"{label}|{g}|ret_n", 0)
            cr[g] = {"n": int(n),
                     "tickets_per_user": div(E.get(f"{label}|{g}|tickets", 0), n),
                     "agent_hours_per_user": div(E.get(f"{label}|{g}|hours", 0), n),
                     "retained_7d_n": int(rn),
                     "retained_7d_share": div(E.get(f"{label}|{g}|ret_k", 0), rn)}
        causal_realized[label] = cr

    dom_real = {}
    for c, d in enumerate(dom_names):
        dr = {}
        for per in ("pre", "post"):
            n = E.get(f"dom|{c}|{per}|n", 0)
            dr[per] = {"interactions": int(n),
                       "hr_final_verdict": div(E.get(f"dom|{c}|{per}|fh", 0), E.get(f"dom|{c}|{per}|adj", 0)),
                       "hr_latent": div(E.get(f"dom|{c}|{per}|lh", 0), n),
                       "hr_tier2": div(E.get(f"dom|{c}|{per}|t2h", 0), E.get(f"dom|{c}|{per}|t2n", 0)),
                       "tier2_n": int(E.get(f"dom|{c}|{per}|t2n", 0))}
        dom_real[d] = dr

    ece = {}
    for lab in ("not_hallucinated", "valid"):
        tot = sum(E.get(f"ece|{lab}|{b}|n", 0) for b in range(10))
        e = 0.0
        for b in range(10):
            nb = E.get(f"ece|{lab}|{b}|n", 0)
            if nb:
                e += nb / tot * abs(E[f"ece|{lab}|{b}|conf"] / nb - E[f"ece|{lab}|{b}|y"] / nb)
        ece[lab] = _r(e) if tot else None

    def mix(lab):
        n = E.get(f"drift|{lab}|n", 0)
        return {d: div(E.get(f"drift|{lab}|cell{c}", 0), n) for c, d in enumerate(dom_names)}

    quarters = [q[0] for q in win.quarters]
    tcr_pre_exp = div(E.get("tcr|pre|expected", 0), E.get("tcr|pre|n", 0))
    tcr_post_exp = div(E.get("tcr|post|expected", 0), E.get("tcr|post|n", 0))
    hm = _handle_means()
    return {
        "generator": "pipelines.demo_data v1",
        "seed": seed,
        "users": users,
        "days": win.days,
        "interactions_requested": interactions,
        "date_range": {"start": win.start.isoformat(), "end": win.end.isoformat()},
        "full_quarters": quarters,
        "row_counts": dict(rows),
        "bad_rows_enabled": bad_rows,
        "bad_rows": dict(bad),
        "population": {
            "segment_share": dict(zip(SEGMENTS, P["segment_share"])),
            "experiment_group_share": {"treatment": P["group_share"][0], "holdout": P["group_share"][1],
                                       "null": P["group_share"][2]},
            "holdout_share": P["group_share"][1],
            "holdout_has_interactions": False,
            "ai_adopter_share": {"treatment": P["adopter_share"][0], "holdout": 0.0, "null": P["adopter_share"][2]},
            "signed_up_before_window_share": P["pre_window_share"],
            "signup_stream": "the rest sign up uniformly over the window (steady stream)",
        },
        "features": {f: list(DOMAINS[f]) for f in FEATURES},
        "model_versions": {
            "v2.3": f"from {win.start.isoformat()}",
            "v2.4": f"7-day gradual rollout from {win.rollout_date.isoformat()} (no change in quality)",
            "v3-ctx4k": f"all traffic from {win.change_date.isoformat()} (context window 8k -> 4k)",
        },
        "tcr_drop": {
            "change_date": win.change_date.isoformat(),
            "model_version": "v3-ctx4k",
            "previous_model_version": "v2.4",
            "scope": "all features and domains, every interaction from the change date on",
            "tcr_before_expected": tcr_pre_exp,
            "tcr_after_expected": tcr_post_exp,
            "tcr_before_realized": div(E.get("tcr|pre|completed", 0), E.get("tcr|pre|n", 0)),
            "tcr_after_realized": div(E.get("tcr|post|completed", 0), E.get("tcr|post|n", 0)),
            "p_completed_not_hallucinated_before": dict(zip(FEATURES, P["p_completed_ok_pre"])),
            "p_completed_not_hallucinated_after": dict(zip(FEATURES, P["p_completed_ok_post"])),
            "p_completed_hallucinated": P["outcome_halluc"][0],
            "other_effects": (
                f"input tokens capped at {P['context_cap_post']} (was {P['context_cap_pre']}), hallucination "
                f"rates x{P['hr_post_change_mult']}, latency x{P['latency_post_mult']}, verification time "
                f"x{P['verification_post_mult']}, cheaper tokens (in ${P['price_in_per_mtok']['v3-ctx4k']}/M, "
                f"out ${P['price_out_per_mtok']['v3-ctx4k']}/M) but fewer valid outputs so CPVO rises, "
                f"more interventions (HitL-F) and more AI-caused tickets"),
        },
        "hallucination": {
            "high_domain": "billing",
            "hr_latent_expected_before": {d: _r(v) for d, v in hr_pre.items()},
            "hr_latent_expected_after": {d: _r(v) for d, v in hr_post.items()},
            "hr_final_verdict_expected_before": {d: _r(measured_hr(v)) for d, v in hr_pre.items()},
            "hr_final_verdict_expected_after": {d: _r(measured_hr(v)) for d, v in hr_post.items()},
            "domains_above_5pct": [d for d, v in hr_pre.items() if v > 0.05],
            "realized_by_domain": dom_real,
            "tier1": {"coverage": P["tier1_coverage"], "sensitivity": P["tier1_sensitivity"],
                      "false_positive_rate": P["tier1_false_positive"], "recheck_share": P["tier1_recheck_share"],
                      "note": "a recheck is a second, later tier-1 verdict drawn independently"},
            "tier2": {"share": P["tier2_share"], "equals_latent_truth": True,
                      "rereview_share": P["tier2_rereview_share"],
                      "note": "re-reviewed interactions have 2 tier-2 verdicts; the LATEST equals the truth, "
                              "the first is flipped 30% of the time"},
            "tier3": {"coverage_failed_outcomes": P["tier3_coverage_failed"],
                      "coverage_other": P["tier3_coverage_other"], "sensitivity": P["tier3_sensitivity"]},
            "outcome_link": "hallucinated outputs are completed 22% of the time vs ~83% otherwise",
        },
        "baseline_rates": {
            "tcr_not_hallucinated_before": dict(zip(FEATURES, P["p_completed_ok_pre"])),
            "tta_note": "TTA = latency + verification; verification lognormal median 6.2 s x feature "
                        "(support 0.85, code 1.3, docs 1.1), x1.3 after the change; ~30% null",
            "latency_ms": "250 + 2.2/output token + 0.12/input token, lognormal sigma 0.35",
            "cost": "cost_usd = input_tokens x price_in + output_tokens x price_out; per 1M tokens: "
                    + "; ".join(f"{m} in ${P['price_in_per_mtok'][m]} out ${P['price_out_per_mtok'][m]}"
                                for m in MODEL_VERSIONS),
            "cost_per_interaction_before": div(E.get("cost|pre|usd", 0), E.get("cost|pre|n", 0)),
            "cost_per_interaction_after": div(E.get("cost|post|usd", 0), E.get("cost|post|n", 0)),
            "interventions": "escalation per escalated output; edits on 12% of corrected; overrides on 15% "
                             "of fallbacks; reviews on 25% of hallucinated, 5% of escalated, 0.3% of completed",
        },
        "confidence": {
            "meaning": "model's estimate that the output is correct and usable",
            "beta_mean": {"not_hallucinated_completed": P["confidence_beta_mean"][0],
                          "not_hallucinated_not_completed": P["confidence_beta_mean"][1],
                          "hallucinated": P["confidence_beta_mean"][2]},
            "direction": "over-confident against valid outputs (mean ~0.89 vs ~81% valid, worse after the "
                         "change: confidence does not drop with TCR); under-confident against "
                         "'not hallucinated' (~97%)",
            "ece_tier2_realized": ece,
            "null_share": P["confidence_null_share"],
        },
        "retention": {
            "hallucination_effect": f"engagement probability x{P['burn_engagement_mult']} for the "
                                    f"{P['burn_days']} days after a day with a hallucinated output",
            "ai_effect": f"AI adopters: engagement x{P['adopter_engagement_mult']}, churn hazard "
                         f"x{P['adopter_churn_mult']}",
            "retention_delta_direction": "positive (AI users retain better than non-AI users)",
        },
        "tickets": {
            "base_per_active_day": P["ticket_base_per_active_day"],
            "adopter_deflection": P["ticket_deflection_adopter"],
            "p_ticket_by_outcome_not_hallucinated": dict(zip(OUTCOMES, P["ticket_p_ok"])),
            "p_ticket_by_outcome_hallucinated": dict(zip(OUTCOMES, P["ticket_p_halluc"])),
            "expected_handle_min": {"base": _r(hm[0], 4), "ai_fail": _r(hm[1], 4), "ai_halluc": _r(hm[2], 4)},
            "direction": "holdout files more tickets per user than treatment; failed / hallucinated outputs "
                         "cause tickets (dose-response), so the gap narrows after the TCR drop",
        },
        "drift": {
            "domain_share_within_feature_start": {f: dict(zip(DOMAINS[f], P["domain_share_start"][i]))
                                                  for i, f in enumerate(FEATURES)},
            "domain_share_within_feature_end": {f: dict(zip(DOMAINS[f], P["domain_share_end"][i]))
                                                for i, f in enumerate(FEATURES)},
            "direction": "billing, sql, javascript, legal shares rise; account, shipping, python, finance, hr "
                         "shares fall (linear over the window); input tokens median +25% over the window "
                         "(capped at 4096 after the change); AI usage per active day +22%",
            "realized_domain_mix_first_28_days": mix("first28"),
            "realized_domain_mix_last_28_days": mix("last28"),
            "realized_mean_input_tokens_first_28_days": div(E.get("drift|first28|in", 0), E.get("drift|first28|n", 0)),
            "realized_mean_input_tokens_last_28_days": div(E.get("drift|last28|in", 0), E.get("drift|last28|n", 0)),
        },
        "infra_costs": {"usd_per_day_by_feature": dict(zip(FEATURES, [_r(v * users / 20_000, 4)
                                                                      for v in P["infra_usd_per_day"]])),
                        "total_usd": _r(infra.sum(), 4)},
        "realized_l6": realized,
        "causal": causal,
        "causal_method": (
            f"monte_carlo: population expectation of the generating process, estimated with a fixed "
            f"random stream (seed {MC_SEED}, independent of `seed`) on {MC_USERS:,} simulated users run "
            f"twice (as treatment and as holdout: common random numbers, {2 * MC_USERS:,} user paths), "
            f"ticket counts and agent hours replaced by their conditional expectations given the "
            f"simulated activity path; mc_se_diff is the Monte-Carlo standard error. Definitions: "
            f"population = treatment/holdout users with signup_date <= quarter end; tickets_per_user = "
            f"mean tickets with created_ts in the quarter; agent_hours_per_user = mean sum(handle_time_min)"
            f"/60; retained_7d_share = share of population users active in the quarter, anchored at their "
            f"first active date in it, with anchor + 7 <= last active date of the data, active again "
            f"within 7 days. The truth does not depend on seed or users."),
        "causal_realized": causal_realized,
        "params": P,
    }


def _main(argv: list[str] | None = None) -> None:
    """`python -m pipelines.demo_data OUT_DIR [--seed N] [--users N] [--days N]`: the generation
    alone, in its own process (runner.build_demo runs it beside the Great Expectations import)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pipelines.demo_data")
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--users", type=int, default=DEFAULT_USERS)
    ap.add_argument("--days", type=int, default=DEFAULT_DAYS)
    a = ap.parse_args(argv)
    generate(a.out_dir, seed=a.seed, users=a.users, days=a.days)


if __name__ == "__main__":
    _main()
