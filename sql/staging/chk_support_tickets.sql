-- chk_support_tickets
-- Grain: one row per distinct source row of `support_tickets`, typed, with `_problem`
-- or null. SPEC §2 asks no foreign key on user_id. Parameters: $as_of.
with source as (
    select distinct * from src_support_tickets
),

typed as (
    select
        cast(ticket_id as varchar) as ticket_id,
        cast(user_id as varchar) as user_id,
        try_cast(try_cast(created_ts as timestamptz) as timestamp) as created_ts,
        try_cast(try_cast(resolved_ts as timestamptz) as timestamp) as resolved_ts,
        try_cast(lower(trim(cast(escalated as varchar))) as boolean) as escalated,
        try_cast(handle_time_min as double) as handle_time_min,
        created_ts is not null as _raw_created_ts,
        resolved_ts is not null as _raw_resolved_ts,
        escalated is not null as _raw_escalated,
        handle_time_min is not null as _raw_handle_time_min,
        to_json(source) as _row_json
    from source
),

id_counts as (
    select *, count(*) over (partition by ticket_id) as _id_rows
    from typed
),

final as (
    select
        *,
        case
            when ticket_id is null then {'reason': 'null_id', 'col': 'ticket_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'ticket_id'}
            when _raw_created_ts and created_ts is null then {'reason': 'unparseable', 'col': 'created_ts'}
            when created_ts is null then {'reason': 'null_required', 'col': 'created_ts'}
            when _raw_resolved_ts and resolved_ts is null then {'reason': 'unparseable', 'col': 'resolved_ts'}
            when _raw_escalated and escalated is null then {'reason': 'unparseable', 'col': 'escalated'}
            when _raw_handle_time_min and handle_time_min is null then {'reason': 'unparseable', 'col': 'handle_time_min'}
            when handle_time_min < 0 or isnan(handle_time_min) then {'reason': 'out_of_range', 'col': 'handle_time_min'}
            when resolved_ts < created_ts then {'reason': 'out_of_range', 'col': 'resolved_ts'}
            when created_ts > $as_of then {'reason': 'future_ts', 'col': 'created_ts'}
        end as _problem
    from id_counts
)

select * exclude (_raw_created_ts, _raw_resolved_ts, _raw_escalated, _raw_handle_time_min, _id_rows)
from final
