-- tickets_daily
-- Grain: UTC date of creation × segment × experiment_group × user_known (the attributes
-- of the ticket's user; both null when the user is not in stg_users, then user_known is
-- false: a "(none)" slice means known users with no value). Additive components of
-- the bridge's support measures (sql/queries/bridge_metrics.sql): tickets and agent
-- minutes. Tickets carry no feature, domain or model version: they slice by user only.
with tickets as (
    select * from stg_support_tickets
),

users as (
    select user_id, segment, experiment_group from stg_users
),

final as (
    select
        cast(tickets.created_ts as date) as created_date,
        users.segment,
        users.experiment_group,
        users.user_id is not null as user_known,
        count(*) as tickets,
        count(*) filter (where tickets.escalated) as escalated_tickets,
        coalesce(sum(tickets.handle_time_min), 0) as handle_time_min
    from tickets
    left join users on users.user_id = tickets.user_id
    group by all
)

select * from final
