-- The bridge's interaction-level measures for one grain and slice (Explore).
-- Grain of the result: period (period_start) x feature, for the periods with selected
-- interactions. The measures are finished in pipelines/bridge_metrics.py: the manual
-- baseline that turns TTA into minutes saved is an assumption per feature, hence the
-- feature in the grain. Same population rule as the L6 table: every selected interaction.
-- Parameters:
--   $grain                                    'day' | 'week' | 'month' | 'quarter'
--   $features, $domains, $model_versions      interaction-attribute slices (list or null)
--   $segments, $experiment_groups             user-attribute slices (list or null)
--   $date_from, $date_to                      optional date range (inclusive, or null)
with mart as (
    select * from l6_daily
    where ($features is null or list_contains($features, feature))
      and ($domains is null or list_contains($domains, domain))
      and ($model_versions is null or list_contains($model_versions, model_version))
      and ($segments is null or list_contains($segments, segment))
      and ($experiment_groups is null or list_contains($experiment_groups, experiment_group))
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

infra as (
    -- the L6 rule for CPVO's infra part (sql/queries/l6.sql): the selected features,
    -- otherwise every feature; a feature-day with infra cost but no selected
    -- interaction still counts in its period when the period has interactions
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

final as (
    select
        coalesce(components.period_start, infra.period_start) as period_start,
        coalesce(components.feature, infra.feature) as feature,
        coalesce(components.interactions, 0) as interactions,
        coalesce(components.valid, 0) as valid,
        coalesce(components.ce_n, 0) as ce_n,
        coalesce(components.ce_intervention_s, 0) as ce_intervention_s,
        coalesce(components.tta_n, 0) as tta_n,
        coalesce(components.tta_sum_s, 0) as tta_sum_s,
        coalesce(components.cost_usd, 0) as cost_usd,
        coalesce(infra.infra_cost_usd, 0) as infra_cost_usd
    from components
    full join infra on infra.period_start = components.period_start and infra.feature = components.feature
    where coalesce(components.period_start, infra.period_start) in (select period_start from components)
)

select * from final order by period_start, feature
