-- stg_support_tickets
-- Grain: one support ticket (ticket_id unique); timestamps in UTC.
-- Materialized as a VIEW of chk_support_tickets (the checked rows are written once).
with checked as (
    select * from chk_support_tickets
),

final as (
    select ticket_id, user_id, created_ts, resolved_ts, escalated, handle_time_min
    from checked
    where _problem is null
)

select * from final
