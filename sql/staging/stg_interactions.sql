-- stg_interactions
-- Grain: one row per AI query and its output (interaction_id unique). Valid rows
-- of chk_interactions; ts in UTC.
-- Materialized as a VIEW of chk_interactions (the checked rows are written once).
with checked as (
    select * from chk_interactions
),

final as (
    select
        interaction_id, ts, user_id, session_id, feature, domain, model_version,
        latency_ms, verification_ms, input_tokens, output_tokens, cost_usd,
        confidence, outcome
    from checked
    where _problem is null
)

select * from final
