-- l6_daily
-- Grain: UTC date × feature × domain × segment × model_version × experiment_group.
-- Additive components only (counts and sums), so any period and any slice rolls up
-- exactly by summing. TTA quantiles and RΔ do not add up: they are computed from
-- int_interactions / int_user_active_days for the requested period and slice.
-- The bridge's interaction-level measures roll up from here too (sql/queries/
-- bridge_metrics.sql): ce_n / ce_intervention_s (outputs corrected or escalated and the
-- human intervention seconds on them) and tta_sum_s (minutes saved vs the manual baseline).
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
        count(tta_s) as tta_n,
        coalesce(sum(tta_s), 0) as tta_sum_s,
        count(*) filter (where outcome in ('corrected', 'escalated')) as ce_n,
        coalesce(sum(intervention_s) filter (where outcome in ('corrected', 'escalated')), 0)
            as ce_intervention_s
    from interactions
    group by all
)

select * from final
