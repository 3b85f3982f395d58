-- stg_user_activity
-- Grain: one row per user per active day ((user_id, activity_date) unique).
-- Materialized as a VIEW of chk_user_activity (the checked rows are written once).
with checked as (
    select * from chk_user_activity
),

final as (
    select user_id, activity_date
    from checked
    where _problem is null
)

select * from final
