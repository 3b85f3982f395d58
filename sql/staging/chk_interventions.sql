-- chk_interventions
-- Grain: one row per distinct source row of `interventions`, typed, with `_problem`
-- or null. Orphan = interaction_id not in stg_interactions. Parameters: $as_of.
with source as (
    select distinct * from src_interventions
),

interactions as (
    select interaction_id from stg_interactions
),

typed as (
    select
        cast(intervention_id as varchar) as intervention_id,
        cast(interaction_id as varchar) as interaction_id,
        try_cast(try_cast(ts as timestamptz) as timestamp) as ts,
        cast(kind as varchar) as kind,
        try_cast(duration_s as double) as duration_s,
        ts is not null as _raw_ts,
        duration_s is not null as _raw_duration_s,
        to_json(source) as _row_json
    from source
),

id_counts as (
    select *, count(*) over (partition by intervention_id) as _id_rows
    from typed
),

final as (
    select
        id_counts.*,
        case
            when intervention_id is null then {'reason': 'null_id', 'col': 'intervention_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'intervention_id'}
            when id_counts.interaction_id is null then {'reason': 'null_required', 'col': 'interaction_id'}
            when _raw_ts and ts is null then {'reason': 'unparseable', 'col': 'ts'}
            when _raw_duration_s and duration_s is null then {'reason': 'unparseable', 'col': 'duration_s'}
            when duration_s < 0 or isnan(duration_s) then {'reason': 'out_of_range', 'col': 'duration_s'}
            when kind is null then {'reason': 'null_required', 'col': 'kind'}
            when kind not in ('edit', 'override', 'review', 'escalation') then {'reason': 'unknown_enum', 'col': 'kind'}
            when ts > $as_of then {'reason': 'future_ts', 'col': 'ts'}
            when interactions.interaction_id is null then {'reason': 'orphan_key', 'col': 'interaction_id'}
        end as _problem
    from id_counts
    left join interactions on id_counts.interaction_id = interactions.interaction_id
)

select * exclude (_raw_ts, _raw_duration_s, _id_rows) from final
