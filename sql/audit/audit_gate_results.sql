-- audit_gate_results
-- Grain: one row per gate expectation result (meta_gate_results) of the runs in
-- $run_ids (the runs the audit looks at; see audit_runs.sql).
-- Parameters: $run_ids (list of run ids).
with results as (
    select * from meta_gate_results
    where list_contains($run_ids, run_id)
),

final as (
    select
        run_id,
        stage,
        suite,
        table_name,
        expectation,
        column_name,
        severity,
        success,
        observed_value,
        unexpected_count,
        evaluated_at
    from results
    order by run_id, evaluated_at, stage, suite, expectation
)

select * from final
