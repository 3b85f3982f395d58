-- The bridge's support measures for one grain and user slice (Explore).
-- Grain of the result: period (period_start) with tickets created in it. Tickets carry
-- no feature, domain or model version, so only the user-attribute slices apply; the
-- caller does not ask this query for an interaction-attribute slice. Population: the
-- users who can use the AI feature, i.e. every experiment group but the holdout, unless
-- $experiment_groups names the groups (then exactly those, holdout included).
-- Parameters:
--   $grain                          'day' | 'week' | 'month' | 'quarter'
--   $segments, $experiment_groups   user-attribute slices (list or null); a known user
--                                   with no value matches $null_label (a ticket of a user
--                                   not in users matches no named slice value)
--   $date_from, $date_to            optional date range on the creation date (or null)
with tickets as (
    select * from tickets_daily
    where ($segments is null or list_contains($segments, coalesce(segment, case when user_known then $null_label end)))
      and (case when $experiment_groups is null then experiment_group is distinct from 'holdout'
                else list_contains($experiment_groups, coalesce(experiment_group, case when user_known then $null_label end)) end)
      and ($date_from is null or created_date >= $date_from)
      and ($date_to is null or created_date <= $date_to)
),

final as (
    select
        cast(date_trunc($grain, created_date) as date) as period_start,
        cast(sum(tickets) as bigint) as tickets,
        cast(sum(escalated_tickets) as bigint) as escalated_tickets,
        sum(handle_time_min) as handle_time_min
    from tickets
    group by all
)

select * from final order by period_start
