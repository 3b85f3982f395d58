-- stg_user_activity
-- Grain: one row per user per active day ((user_id, activity_date) unique).
with checked as (
    select * from chk_user_activity
),

final as (
    select user_id, activity_date
    from checked
    where _problem is null
)

select * from final
