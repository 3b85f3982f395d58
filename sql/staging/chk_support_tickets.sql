-- chk_support_tickets
-- Grain: one row per distinct source row of `support_tickets`, typed, with `_problem`
-- or null and `_row_json` for problem rows. SPEC §2 asks no foreign key on user_id.
-- Only rows whose id repeats go through DISTINCT. Parameters: $as_of.
with raw_rows as (
    select src as _raw from src_support_tickets as src
),

repeated_ids as (
    -- ids that occur more than once (few): only their rows go through DISTINCT, and the
    -- join that picks them builds its hash table on this small set
    select _raw.ticket_id as id from raw_rows where _raw.ticket_id is not null group by all having count(*) > 1
),

single_rows as (
    select raw_rows._raw, 1 as _id_rows
    from raw_rows
    anti join repeated_ids on raw_rows._raw.ticket_id = repeated_ids.id
    where raw_rows._raw.ticket_id is not null
),

repeated_rows as (
    select _raw, count(*) over (partition by _raw.ticket_id) as _id_rows
    from (
        select distinct _raw from raw_rows
        where _raw.ticket_id is null or _raw.ticket_id in (select id from repeated_ids)
    )
),

source as (
    select * from single_rows
    union all
    select * from repeated_rows
),

typed as (
    select
        cast(_raw.ticket_id as varchar) as ticket_id,
        cast(_raw.user_id as varchar) as user_id,
        utc_timestamp(_raw.created_ts) as created_ts,
        utc_timestamp(_raw.resolved_ts) as resolved_ts,
        try_cast(lower(trim(cast(_raw.escalated as varchar))) as boolean) as escalated,
        try_cast(_raw.handle_time_min as double) as handle_time_min,
        _raw,
        _id_rows
    from source
),

checked as (
    select
        *,
        case
            when ticket_id is null then {'reason': 'null_id', 'col': 'ticket_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'ticket_id'}
            when _raw.created_ts is not null and created_ts is null then {'reason': 'unparseable', 'col': 'created_ts'}
            when created_ts is null then {'reason': 'null_required', 'col': 'created_ts'}
            when _raw.resolved_ts is not null and resolved_ts is null then {'reason': 'unparseable', 'col': 'resolved_ts'}
            when _raw.escalated is not null and escalated is null then {'reason': 'unparseable', 'col': 'escalated'}
            when _raw.handle_time_min is not null and handle_time_min is null then {'reason': 'unparseable', 'col': 'handle_time_min'}
            when handle_time_min < 0 or isnan(handle_time_min) then {'reason': 'out_of_range', 'col': 'handle_time_min'}
            when resolved_ts < created_ts then {'reason': 'out_of_range', 'col': 'resolved_ts'}
            when created_ts > $as_of then {'reason': 'future_ts', 'col': 'created_ts'}
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
