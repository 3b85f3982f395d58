-- chk_users
-- Grain: one row per distinct source row of `users` (exact duplicates removed),
-- typed, with `_problem` = the first row-level problem found ({reason, col}) or null.
-- Feeds stg_users (valid rows) and quarantine (the rest).
with source as (
    select distinct * from src_users
),

typed as (
    select
        cast(user_id as varchar) as user_id,
        coalesce(try_cast(signup_date as date),
                 try_cast(try_cast(signup_date as timestamptz) as date)) as signup_date,
        cast(segment as varchar) as segment,
        cast(experiment_group as varchar) as experiment_group,
        signup_date is not null as _has_signup_date,
        to_json(source) as _row_json
    from source
),

id_counts as (
    select *, count(*) over (partition by user_id) as _id_rows
    from typed
),

final as (
    select
        *,
        case
            when user_id is null then {'reason': 'null_id', 'col': 'user_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'user_id'}
            when _has_signup_date and signup_date is null then {'reason': 'unparseable', 'col': 'signup_date'}
            when experiment_group is not null and experiment_group not in ('treatment', 'holdout')
                then {'reason': 'unknown_enum', 'col': 'experiment_group'}
        end as _problem
    from id_counts
)

select * exclude (_has_signup_date, _id_rows) from final
