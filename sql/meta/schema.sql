-- Meta tables: the run history, carried across rebuilds (see docs/ARCHITECTURE.md).
create table if not exists meta_runs (
    run_id varchar primary key,
    command varchar,
    source varchar,
    as_of timestamp,
    started_at timestamp,
    finished_at timestamp,
    status varchar,          -- running | success | gate_failed | error
    failed_stage varchar,
    message varchar,
    stage_seconds varchar    -- JSON {stage: seconds}
);

create table if not exists meta_ingest_summary (
    run_id varchar,
    table_name varchar,
    source varchar,
    rows_read bigint,
    rows_deduplicated bigint,
    rows_quarantined bigint,
    rows_kept bigint
);

create table if not exists meta_quarantine_summary (
    run_id varchar,
    table_name varchar,
    reason varchar,
    column_name varchar,
    n bigint
);
