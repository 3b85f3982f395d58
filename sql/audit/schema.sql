-- Audit tables (SPEC §6): the 8-week metric audit's records and their flat checks.
-- Named audit_*, so runner._carry_history copies them into every rebuilt warehouse.
create table if not exists audit_records (
    audit_id varchar primary key,
    created_at timestamp,        -- when the audit ran (UTC)
    as_of date,                  -- the audit date; the window is the 8 full ISO weeks before it
    window_start date,           -- Monday of the first audit week
    window_end date,             -- Sunday of the last audit week (inclusive)
    reference_start date,        -- the 8 weeks before the window
    reference_end date,
    data_last_date date,         -- the last interaction date in the warehouse
    contract_version varchar,    -- config/metric_contract.toml `version`
    config_versions varchar,     -- JSON {config file: version, ..., "metric_contract_sha256": ...}
    findings varchar,            -- JSON: every check (see pipelines/audit.py)
    score double,                -- the contract's weighted score, window against reference
    verdict varchar,             -- keep | iterate | re-define (the computed recommendation)
    gate_runs varchar,           -- JSON: the pipeline runs (and their gate results) the audit used
    gate_success boolean,        -- the audit stage's own gate (expectations/audit__*.json)
    decision varchar,            -- the decision recorded at sign-off
    signed_by varchar,
    signed_at timestamp,         -- UTC
    next_due date                -- signed_at's date + 56 days
);

create table if not exists audit_checks (
    audit_id varchar,
    check_name varchar,          -- decay | drift | calibration | tier_agreement | alignment | gaming | decision
    subject varchar,             -- the metric, input, bin or pair the row is about
    measure varchar,             -- what `value` is (psi, ece, kappa, slope_per_week, ...)
    kind varchar,                -- psi | ece | kappa | share | corr | slope | count | weeks | score | ratio
    value double,
    ci_low double,               -- 95% interval where the measure has one
    ci_high double,
    flagged boolean
);
