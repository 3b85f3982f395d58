-- stg_interventions
-- Grain: one human-in-the-loop event (intervention_id unique). Valid rows of
-- chk_interventions.
-- Materialized as a VIEW of chk_interventions (the checked rows are written once).
with checked as (
    select * from chk_interventions
),

final as (
    select intervention_id, interaction_id, ts, kind, duration_s
    from checked
    where _problem is null
)

select * from final
