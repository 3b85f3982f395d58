-- audit_runs
-- Grain: one row per pipeline run (meta_runs) that started in [$from_ts, $to_ts), or
-- that built the warehouse being audited (the run in progress, else the latest
-- successful run).
-- Parameters: $from_ts, $to_ts (timestamps, UTC).
with runs as (
    select * from meta_runs
),

builder as (
    -- the run building this warehouse now (the audit stage of a run: its earlier stages'
    -- gate results are in), else the latest successful run (a standalone audit)
    select run_id from runs
    where status in ('running', 'success')
    order by status = 'running' desc, started_at desc, run_id desc
    limit 1
),

final as (
    select
        runs.run_id,
        runs.command,
        runs.started_at,
        runs.finished_at,
        runs.status,
        runs.failed_stage,
        runs.started_at >= $from_ts and runs.started_at < $to_ts as in_window,
        runs.run_id in (select run_id from builder) as built_this_warehouse
    from runs
    where (runs.started_at >= $from_ts and runs.started_at < $to_ts)
       or runs.run_id in (select run_id from builder)
    order by runs.started_at
)

select * from final
