-- chk_users
-- Grain: one row per distinct source row of `users`, typed, with `_problem` = the
-- first row-level problem found ({reason, col}) or null, and `_row_json` (the raw
-- row, only for rows with a problem). Feeds stg_users and quarantine.
-- Exact duplicates can only share an id: only rows whose id repeats go through DISTINCT.
with raw_rows as (
    select src as _raw from src_users as src
),

repeated_ids as (
    -- ids that occur more than once (few): only their rows go through DISTINCT, and the
    -- join that picks them builds its hash table on this small set
    select _raw.user_id as id from raw_rows where _raw.user_id is not null group by all having count(*) > 1
),

single_rows as (
    select raw_rows._raw, 1 as _id_rows
    from raw_rows
    anti join repeated_ids on raw_rows._raw.user_id = repeated_ids.id
    where raw_rows._raw.user_id is not null
),

repeated_rows as (
    select _raw, count(*) over (partition by _raw.user_id) as _id_rows
    from (
        select distinct _raw from raw_rows
        where _raw.user_id is null or _raw.user_id in (select id from repeated_ids)
    )
),

source as (
    select * from single_rows
    union all
    select * from repeated_rows
),

typed as (
    select
        cast(_raw.user_id as varchar) as user_id,
        coalesce(try_cast(_raw.signup_date as date),
                 try_cast(try_cast(_raw.signup_date as timestamptz) as date)) as signup_date,
        cast(_raw.segment as varchar) as segment,
        cast(_raw.experiment_group as varchar) as experiment_group,
        _raw,
        _id_rows
    from source
),

checked as (
    select
        *,
        case
            when user_id is null then {'reason': 'null_id', 'col': 'user_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'user_id'}
            when _raw.signup_date is not null and signup_date is null then {'reason': 'unparseable', 'col': 'signup_date'}
            when experiment_group is not null and experiment_group not in ('treatment', 'holdout')
                then {'reason': 'unknown_enum', 'col': 'experiment_group'}
        end as _problem
    from typed
),

final as (
    select
        * exclude (_raw, _id_rows),
        case when _problem is not null then to_json(_raw) end as _row_json
    from checked
)

select * from final
