-- chk_user_activity
-- Grain: one row per distinct source row of `user_activity`, typed, with `_problem`
-- or null and `_row_json` for problem rows. (user_id, activity_date) is the key: exact
-- repeats are removed; two raw spellings of one date ('2026-04-01',
-- '2026-04-01T00:00:00Z') are one key: the first is kept, the others quarantined as
-- duplicate_id. SPEC §2 asks no foreign key here: activity of a user missing from
-- `users` is kept (it counts for RΔ without a slice, and drops out of a segment slice).
-- Parameters: $as_of.
with source as (
    select distinct src as _raw from src_user_activity as src
),

typed as (
    select
        cast(_raw.user_id as varchar) as user_id,
        coalesce(try_cast(_raw.activity_date as date),
                 try_cast(try_cast(_raw.activity_date as timestamptz) as date)) as activity_date,
        _raw
    from source
),

keyed as (
    select *, row_number() over (partition by user_id, activity_date order by _raw) as _copy
    from typed
),

checked as (
    select
        *,
        case
            when user_id is null then {'reason': 'null_id', 'col': 'user_id'}
            when _raw.activity_date is not null and activity_date is null then {'reason': 'unparseable', 'col': 'activity_date'}
            when activity_date is null then {'reason': 'null_required', 'col': 'activity_date'}
            when activity_date > cast($as_of as date) then {'reason': 'future_ts', 'col': 'activity_date'}
            when _copy > 1 then {'reason': 'duplicate_id', 'col': 'activity_date'}
        end as _problem
    from keyed
),

final as (
    select
        * exclude (_raw, _copy),
        case when _problem is not null then to_json(_raw) end as _row_json
    from checked
)

select * from final
