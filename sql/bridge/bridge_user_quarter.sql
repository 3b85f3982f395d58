-- bridge_user_quarter
-- Grain: one row per quarter (bridge_quarters) x user of the causal population: users
-- with experiment_group in ('treatment', 'holdout') and signup_date <= the quarter's
-- last day (intention-to-treat: every assigned user counts, AI user or not).
-- Per-user outcomes of the quarter, the inputs of the treatment-vs-holdout comparison:
--   tickets              support tickets with created_ts in the quarter (0 when none)
--   agent_hours          sum(handle_time_min) / 60 of those tickets
--   active_in_quarter    has an int_user_active_days row in the quarter
--   anchor_date          first active date in the quarter
--   retention_eligible   active, and anchor_date + $window_days <= last active date of the data
--   retained_7d          eligible and next active date <= anchor_date + $window_days (else null)
--   interactions         AI interactions in the quarter; first_interaction_date the first
--   ai_retention_eligible has an interaction in the quarter and first_interaction_date +
--                        $window_days <= last active date (an "AI user" of RΔ, SPEC §3)
--   pre_tickets, pre_agent_hours, pre_active_days  the same behavior in the pre-period
--                        [$pre_start, $pre_end] (CUPED covariates; null without a pre-period)
-- Parameters: $window_days (7), $pre_start, $pre_end (dates or null).
with quarters as (
    select quarter, quarter_start, quarter_end, last_active_date from bridge_quarters
),

assigned_users as (
    select user_id, experiment_group, segment, signup_date
    from stg_users
    where experiment_group in ('treatment', 'holdout')
),

population as (
    select quarters.*, assigned_users.*
    from quarters
    join assigned_users on assigned_users.signup_date <= quarters.quarter_end
),

tickets as (
    -- grouped on the quarter's first day (a date): no label string built per row
    select
        cast(date_trunc('quarter', created_ts) as date) as quarter_start,
        user_id,
        count(*) as tickets,
        coalesce(sum(handle_time_min), 0) / 60.0 as agent_hours
    from stg_support_tickets
    where user_id in (select user_id from assigned_users)
    group by all
),

anchored as (
    -- the first active day of each user's quarter and, on that day, the next active date
    select
        cast(date_trunc('quarter', activity_date) as date) as quarter_start,
        user_id,
        min(activity_date) as anchor_date,
        arg_min_null(next_active_date, activity_date) as next_active_date
    from int_user_active_days
    where user_id in (select user_id from assigned_users)
    group by all
),

ai_use as (
    select
        cast(date_trunc('quarter', activity_date) as date) as quarter_start,
        user_id,
        count(*) as interactions,
        min(activity_date) as first_interaction_date
    from int_interactions
    where experiment_group in ('treatment', 'holdout')
    group by all
),

pre_tickets as (
    select user_id, count(*) as pre_tickets, coalesce(sum(handle_time_min), 0) / 60.0 as pre_agent_hours
    from stg_support_tickets
    where cast($pre_start as date) is not null
      and cast(created_ts as date) between cast($pre_start as date) and cast($pre_end as date)
    group by all
),

pre_active as (
    select user_id, count(*) as pre_active_days
    from int_user_active_days
    where cast($pre_start as date) is not null
      and activity_date between cast($pre_start as date) and cast($pre_end as date)
    group by all
),

final as (
    select
        population.quarter,
        population.user_id,
        population.experiment_group,
        population.segment,
        population.signup_date,
        coalesce(tickets.tickets, 0) as tickets,
        coalesce(tickets.agent_hours, 0.0) as agent_hours,
        anchored.anchor_date is not null as active_in_quarter,
        anchored.anchor_date,
        coalesce(anchored.anchor_date + $window_days <= population.last_active_date, false) as retention_eligible,
        case when anchored.anchor_date + $window_days <= population.last_active_date
             then coalesce(anchored.next_active_date <= anchored.anchor_date + $window_days, false)
        end as retained_7d,
        coalesce(ai_use.interactions, 0) as interactions,
        ai_use.first_interaction_date,
        coalesce(ai_use.first_interaction_date + $window_days <= population.last_active_date, false)
            as ai_retention_eligible,
        case when cast($pre_start as date) is not null then coalesce(pre_tickets.pre_tickets, 0) end as pre_tickets,
        case when cast($pre_start as date) is not null then coalesce(pre_tickets.pre_agent_hours, 0.0) end
            as pre_agent_hours,
        case when cast($pre_start as date) is not null then coalesce(pre_active.pre_active_days, 0) end
            as pre_active_days
    from population
    left join tickets on tickets.quarter_start = population.quarter_start and tickets.user_id = population.user_id
    left join anchored on anchored.quarter_start = population.quarter_start and anchored.user_id = population.user_id
    left join ai_use on ai_use.quarter_start = population.quarter_start and ai_use.user_id = population.user_id
    left join pre_tickets on pre_tickets.user_id = population.user_id
    left join pre_active on pre_active.user_id = population.user_id
)

select * from final
