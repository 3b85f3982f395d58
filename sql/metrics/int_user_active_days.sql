-- int_user_active_days
-- Grain: one row per user per active date (SPEC §3: active = a user_activity row or
-- an interaction that UTC date), with the user's next active date (null if none),
-- so 7-day retention from an anchor date is one equi-join away.
with activity as (
    select user_id, activity_date from stg_user_activity
),

interaction_days as (
    select distinct user_id, activity_date from int_interactions
),

interaction_only_days as (
    -- stg_user_activity is unique on (user_id, activity_date): chk_user_activity
    -- quarantines a repeated key as duplicate_id (and staging's gate checks it). So the
    -- union needs no DISTINCT over every row: add only the days that have interactions
    -- and no activity row. (A repeated day would make lead() return the same date and
    -- count the user as retained.)
    select interaction_days.*
    from interaction_days
    anti join activity
        on interaction_days.user_id = activity.user_id
       and interaction_days.activity_date = activity.activity_date
),

active_days as (
    select user_id, activity_date from activity
    union all
    select user_id, activity_date from interaction_only_days
),

final as (
    select
        user_id,
        activity_date,
        lead(activity_date) over (partition by user_id order by activity_date) as next_active_date
    from active_days
)

select * from final
