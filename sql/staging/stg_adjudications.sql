-- stg_adjudications
-- Grain: one hallucination verdict (interaction × tier × ts); an interaction may have
-- several per tier. Valid rows of chk_adjudications.
-- Materialized as a VIEW of chk_adjudications (the checked rows are written once).
with checked as (
    select * from chk_adjudications
),

final as (
    select interaction_id, tier, hallucinated, ts
    from checked
    where _problem is null
)

select * from final
