-- chk_user_activity
-- Grain: one row per distinct source row of `user_activity` ((user_id, activity_date)
-- is the key, so any repeat is an exact duplicate and is removed). `_problem` or null.
-- SPEC §2 asks no foreign key here: activity of a user missing from `users` is kept
-- (it counts for RΔ without a slice, and drops out of a segment slice).
-- Parameters: $as_of.
with source as (
    select distinct * from src_user_activity
),

typed as (
    select
        cast(user_id as varchar) as user_id,
        coalesce(try_cast(activity_date as date),
                 try_cast(try_cast(activity_date as timestamptz) as date)) as activity_date,
        activity_date is not null as _raw_activity_date,
        to_json(source) as _row_json
    from source
),

deduplicated as (
    -- two raw spellings of one date ('2026-04-01', '2026-04-01T00:00:00Z') are one key:
    -- the first is kept, the others quarantined as duplicate_id
    select *, row_number() over (partition by user_id, activity_date order by _row_json) as _copy
    from typed
),

final as (
    select
        *,
        case
            when user_id is null then {'reason': 'null_id', 'col': 'user_id'}
            when _raw_activity_date and activity_date is null then {'reason': 'unparseable', 'col': 'activity_date'}
            when activity_date is null then {'reason': 'null_required', 'col': 'activity_date'}
            when activity_date > cast($as_of as date) then {'reason': 'future_ts', 'col': 'activity_date'}
            when _copy > 1 then {'reason': 'duplicate_id', 'col': 'activity_date'}
        end as _problem
    from deduplicated
)

select * exclude (_raw_activity_date, _copy) from final
