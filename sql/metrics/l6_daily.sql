-- l6_daily
-- Grain: UTC date × feature × domain × segment × model_version × experiment_group.
-- Additive components only (counts and sums), so any period and any slice rolls up
-- exactly by summing. TTA quantiles and RΔ do not add up: they are computed from
-- int_interactions / int_user_active_days for the requested period and slice.
with interactions as (
    select * from int_interactions
),

final as (
    select
        activity_date,
        feature,
        domain,
        segment,
        model_version,
        experiment_group,
        count(*) as interactions,
        count(*) filter (where is_completed) as completed,
        count(is_hallucinated) as adjudicated,
        count(*) filter (where is_hallucinated) as hallucinated,
        count(*) filter (where is_valid) as valid,
        count(tier3_hallucinated) as tier3_adjudicated,
        count(*) filter (where tier3_hallucinated) as tier3_hallucinated,
        sum(n_interventions) as interventions,
        sum(intervention_s) as intervention_s,
        coalesce(sum(cost_usd), 0) as cost_usd,
        count(tta_s) as tta_n
    from interactions
    group by all
)

select * from final
