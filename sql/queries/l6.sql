-- The L6 table for one grain and slice (SPEC §3, §7).
-- Grain of the result: one row per period (period_start) that has interactions.
-- Parameters:
--   $grain       'day' | 'week' | 'month' | 'quarter' (with $is_all, ignored)
--   $is_all      true: one period from the first to the last selected date
--   $features, $domains, $model_versions      interaction-attribute slices (list or null)
--   $segments, $experiment_groups             user-attribute slices (list or null); a
--                                             user with no value matches $null_label
--   $date_from, $date_to                      optional date range (inclusive, or null)
--   $window_days                              retention window (7)
--   $with_retention                           false: skip RΔ (its columns come back 0), the
--                                             costly part on a large warehouse
-- Additive parts roll up from l6_daily; TTA quantiles and RΔ come from row-level
-- models. Ratios and the RΔ interval are finished in pipelines/l6.py.
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

span as (
    select min(activity_date) as first_date, max(activity_date) as last_date from mart
),

selected_interactions as not materialized (
    select * from int_interactions
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
        case when $is_all then span.first_date
             else cast(date_trunc($grain, mart.activity_date) as date) end as period_start,
        cast(sum(interactions) as bigint) as interactions,
        cast(sum(completed) as bigint) as completed,
        cast(sum(adjudicated) as bigint) as adjudicated,
        cast(sum(hallucinated) as bigint) as hallucinated,
        cast(sum(valid) as bigint) as valid,
        cast(sum(tier3_adjudicated) as bigint) as tier3_adjudicated,
        cast(sum(tier3_hallucinated) as bigint) as tier3_hallucinated,
        cast(sum(interventions) as bigint) as interventions,
        sum(cost_usd) as cost_usd,
        cast(sum(tta_n) as bigint) as tta_n
    from mart, span
    group by all
),

infra as (
    -- SPEC §3: infra_costs in P for the slice's features (the selected features when
    -- the slice filters on feature, otherwise every feature).
    select
        case when $is_all then span.first_date
             else cast(date_trunc($grain, infra.date) as date) end as period_start,
        sum(infra.cost_usd) as infra_cost_usd
    from stg_infra_costs as infra, span
    where ($features is null or list_contains($features, infra.feature))
      and ($date_from is null or infra.date >= $date_from)
      and ($date_to is null or infra.date <= $date_to)
      and (not $is_all or infra.date between span.first_date and span.last_date)
    group by all
),

tta as (
    select
        case when $is_all then span.first_date
             else cast(date_trunc($grain, activity_date) as date) end as period_start,
        quantile_cont(tta_s, 0.5) as tta_p50_s,
        quantile_cont(tta_s, 0.9) as tta_p90_s
    from selected_interactions, span
    where tta_s is not null
    group by all
),

-- Retention Delta -----------------------------------------------------------------
active_days as not materialized (
    select * from int_user_active_days
),

last_active as (
    select max(activity_date) as last_active_date from active_days
),

slice_users as (
    -- a user-attribute slice restricts both groups to users with that attribute
    select user_id from stg_users
    where ($segments is null or list_contains($segments, coalesce(segment, $null_label)))
      and ($experiment_groups is null or list_contains($experiment_groups, coalesce(experiment_group, $null_label)))
),

ai_users as (
    select
        case when $is_all then span.first_date
             else cast(date_trunc($grain, activity_date) as date) end as period_start,
        user_id,
        min(activity_date) as anchor_date
    from selected_interactions, span
    where $with_retention
    group by all
),

slice_active_days as not materialized (
    -- a user-attribute slice restricts both groups to users with that attribute; the
    -- semi join runs only when there is one (an OR of "no slice" and the join would probe
    -- every active day even when unsliced)
    select * from active_days
    where $segments is null and $experiment_groups is null
    union all
    select active_days.* from active_days
    semi join slice_users on active_days.user_id = slice_users.user_id
    where not ($segments is null and $experiment_groups is null)
),

active_in_period as (
    -- each user's first active date in the period and, on that day, the next active date
    select
        case when $is_all then span.first_date
             else cast(date_trunc($grain, slice_active_days.activity_date) as date) end as period_start,
        slice_active_days.user_id,
        min(slice_active_days.activity_date) as anchor_date,
        arg_min_null(slice_active_days.next_active_date, slice_active_days.activity_date) as next_active_date
    from slice_active_days, span
    where $with_retention
      and ($date_from is null or slice_active_days.activity_date >= $date_from)
      and ($date_to is null or slice_active_days.activity_date <= $date_to)
      and (not $is_all or slice_active_days.activity_date between span.first_date and span.last_date)
    group by all
),

non_ai_users as (
    select active_in_period.*
    from active_in_period
    anti join ai_users
        on active_in_period.period_start = ai_users.period_start
       and active_in_period.user_id = ai_users.user_id
),

ai_anchored as (
    -- an AI user's anchor is the first interaction date: its next active date is looked up
    select ai_users.*, active_days.next_active_date
    from ai_users
    join active_days
        on active_days.user_id = ai_users.user_id
       and active_days.activity_date = ai_users.anchor_date
),

cohorts as (
    select period_start, user_id, anchor_date, next_active_date, true as is_ai from ai_anchored
    union all
    select period_start, user_id, anchor_date, next_active_date, false as is_ai from non_ai_users
),

eligible as (
    select cohorts.*
    from cohorts
    cross join last_active
    where cohorts.anchor_date + $window_days <= last_active.last_active_date
),

retention as (
    select
        period_start,
        count(*) filter (where is_ai) as rd_n_ai,
        count(*) filter (where is_ai and next_active_date <= anchor_date + $window_days) as rd_retained_ai,
        count(*) filter (where not is_ai) as rd_n_non_ai,
        count(*) filter (where not is_ai and next_active_date <= anchor_date + $window_days) as rd_retained_non_ai
    from eligible
    group by period_start
),

final as (
    select
        components.*,
        coalesce(infra.infra_cost_usd, 0) as infra_cost_usd,
        tta.tta_p50_s,
        tta.tta_p90_s,
        coalesce(retention.rd_n_ai, 0) as rd_n_ai,
        coalesce(retention.rd_retained_ai, 0) as rd_retained_ai,
        coalesce(retention.rd_n_non_ai, 0) as rd_n_non_ai,
        coalesce(retention.rd_retained_non_ai, 0) as rd_retained_non_ai
    from components
    left join infra using (period_start)
    left join tta using (period_start)
    left join retention using (period_start)
    order by period_start
)

select * from final
