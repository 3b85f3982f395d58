-- bridge_cells_user
-- Grain: ISO week (week_start, Monday) x segment, over the treatment group (users with
-- experiment_group = 'treatment'): the cells of user-level dose-response edges
-- (e.g. TCR -> support contacts per 1,000 AI interactions). Only weeks with interactions.
--   interactions, completed, tcr                 the group's AI interactions in the cell
--   tickets, agent_hours                         its support tickets created in the week
--   support_contacts_per_1k = 1000 x tickets / interactions
with interactions as (
    select
        cast(date_trunc('week', activity_date) as date) as week_start,
        segment,
        count(*) as interactions,
        count(*) filter (where is_completed) as completed
    from int_interactions
    where experiment_group = 'treatment'
    group by all
),

tickets as (
    select
        cast(date_trunc('week', tickets.created_ts) as date) as week_start,
        users.segment,
        count(*) as tickets,
        coalesce(sum(tickets.handle_time_min), 0) / 60.0 as agent_hours
    from stg_support_tickets as tickets
    join stg_users as users on users.user_id = tickets.user_id
    where users.experiment_group = 'treatment'
    group by all
),

final as (
    select
        interactions.week_start,
        interactions.segment as slice,
        interactions.interactions,
        interactions.completed,
        interactions.completed / interactions.interactions as tcr,
        coalesce(tickets.tickets, 0) as tickets,
        coalesce(tickets.agent_hours, 0.0) as agent_hours,
        1000.0 * coalesce(tickets.tickets, 0) / interactions.interactions as support_contacts_per_1k
    from interactions
    left join tickets
        on tickets.week_start = interactions.week_start and tickets.segment is not distinct from interactions.segment
)

select * from final order by week_start, slice
