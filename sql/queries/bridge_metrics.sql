-- The bridge's interaction-level measures for one grain and slice (Explore).
-- Grain of the result: period (period_start) x feature, for the periods with selected
-- interactions. The measures are finished in pipelines/bridge_metrics.py: the manual
-- baseline that turns TTA into minutes saved is an assumption per feature, hence the
-- feature in the grain. Same population rule as the L6 table: every selected interaction.
-- Infra cost (a fixed platform cost per feature-day) is shared out as on the Bridge page:
-- each feature's infra of the period x the slice's share of that feature's interactions
-- in the period (1 for an unfiltered or feature-only slice, so its AI spend is CPVO's
-- numerator); a feature with infra but no interaction in the period charges a slice only
-- when the slice is not cut by domain, model version or user.
-- Parameters:
--   $grain                                    'day' | 'week' | 'month' | 'quarter'
--   $features, $domains, $model_versions      interaction-attribute slices (list or null)
--   $segments, $experiment_groups             user-attribute slices (list or null); a
--                                             user with no value matches $null_label
--   $date_from, $date_to                      optional date range (inclusive, or null)
with mart as (
    select * from l6_daily
    where ($features is null or list_contains($features, feature))
      and ($domains is null or list_contains($domains, domain))
      and ($model_versions is null or list_contains($model_versions, model_version))
      and ($segments is null or list_contains($segments, coalesce(segment, $null_label)))
      and ($experiment_groups is null or list_contains($experiment_groups, coalesce(experiment_group, $null_label)))
      and ($date_from is null or activity_date >= $date_from)
      and ($date_to is null or activity_date <= $date_to)
),

components as (
    select
        cast(date_trunc($grain, activity_date) as date) as period_start,
        feature,
        cast(sum(interactions) as bigint) as interactions,
        cast(sum(valid) as bigint) as valid,
        cast(sum(ce_n) as bigint) as ce_n,
        sum(ce_intervention_s) as ce_intervention_s,
        cast(sum(tta_n) as bigint) as tta_n,
        sum(tta_sum_s) as tta_sum_s,
        sum(cost_usd) as cost_usd
    from mart
    group by all
),

feature_totals as (
    -- every interaction of each feature in the period, whatever the slice
    select
        cast(date_trunc($grain, activity_date) as date) as period_start,
        feature,
        sum(interactions) as all_interactions
    from l6_daily
    where ($date_from is null or activity_date >= $date_from)
      and ($date_to is null or activity_date <= $date_to)
    group by all
),

infra as (
    select
        cast(date_trunc($grain, date) as date) as period_start,
        feature,
        sum(cost_usd) as infra_cost_usd
    from stg_infra_costs
    where ($features is null or list_contains($features, feature))
      and ($date_from is null or date >= $date_from)
      and ($date_to is null or date <= $date_to)
    group by all
),

allocated_infra as (
    select
        infra.period_start,
        infra.feature,
        infra.infra_cost_usd * coalesce(
            coalesce(components.interactions, 0) / nullif(feature_totals.all_interactions, 0),
            case when $domains is null and $model_versions is null and $segments is null
                      and $experiment_groups is null then 1 else 0 end
        ) as infra_cost_usd
    from infra
    left join components
        on components.period_start = infra.period_start and components.feature = infra.feature
    left join feature_totals
        on feature_totals.period_start = infra.period_start and feature_totals.feature = infra.feature
),

final as (
    select
        coalesce(components.period_start, allocated_infra.period_start) as period_start,
        coalesce(components.feature, allocated_infra.feature) as feature,
        coalesce(components.interactions, 0) as interactions,
        coalesce(components.valid, 0) as valid,
        coalesce(components.ce_n, 0) as ce_n,
        coalesce(components.ce_intervention_s, 0) as ce_intervention_s,
        coalesce(components.tta_n, 0) as tta_n,
        coalesce(components.tta_sum_s, 0) as tta_sum_s,
        coalesce(components.cost_usd, 0) as cost_usd,
        coalesce(allocated_infra.infra_cost_usd, 0) as infra_cost_usd
    from components
    full join allocated_infra
        on allocated_infra.period_start = components.period_start and allocated_infra.feature = components.feature
    where coalesce(components.period_start, allocated_infra.period_start) in (select period_start from components)
)

select * from final order by period_start, feature
