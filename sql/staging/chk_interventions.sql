-- chk_interventions
-- Grain: one row per distinct source row of `interventions`, typed, with `_problem`
-- or null and `_row_json` for problem rows. Orphan = interaction_id not in
-- stg_interactions. Only rows whose id repeats go through DISTINCT. Parameters: $as_of.
with raw_rows as (
    select src as _raw from src_interventions as src
),

repeated_ids as (
    -- ids that occur more than once (few): only their rows go through DISTINCT, and the
    -- join that picks them builds its hash table on this small set
    select _raw.intervention_id as id from raw_rows where _raw.intervention_id is not null group by all having count(*) > 1
),

single_rows as (
    select raw_rows._raw, 1 as _id_rows
    from raw_rows
    anti join repeated_ids on raw_rows._raw.intervention_id = repeated_ids.id
    where raw_rows._raw.intervention_id is not null
),

repeated_rows as (
    select _raw, count(*) over (partition by _raw.intervention_id) as _id_rows
    from (
        select distinct _raw from raw_rows
        where _raw.intervention_id is null or _raw.intervention_id in (select id from repeated_ids)
    )
),

source as (
    select * from single_rows
    union all
    select * from repeated_rows
),

interactions as (
    select interaction_id from stg_interactions
),

typed as (
    select
        cast(_raw.intervention_id as varchar) as intervention_id,
        cast(_raw.interaction_id as varchar) as interaction_id,
        utc_timestamp(_raw.ts) as ts,
        cast(_raw.kind as varchar) as kind,
        try_cast(_raw.duration_s as double) as duration_s,
        _raw,
        _id_rows
    from source
),

checked as (
    select
        typed.*,
        case
            when intervention_id is null then {'reason': 'null_id', 'col': 'intervention_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'intervention_id'}
            when typed.interaction_id is null then {'reason': 'null_required', 'col': 'interaction_id'}
            when _raw.ts is not null and ts is null then {'reason': 'unparseable', 'col': 'ts'}
            when _raw.duration_s is not null and duration_s is null then {'reason': 'unparseable', 'col': 'duration_s'}
            when duration_s < 0 or isnan(duration_s) then {'reason': 'out_of_range', 'col': 'duration_s'}
            when kind is null then {'reason': 'null_required', 'col': 'kind'}
            when kind not in ('edit', 'override', 'review', 'escalation') then {'reason': 'unknown_enum', 'col': 'kind'}
            when ts > $as_of then {'reason': 'future_ts', 'col': 'ts'}
            when interactions.interaction_id is null then {'reason': 'orphan_key', 'col': 'interaction_id'}
        end as _problem
    from typed
    left join interactions on typed.interaction_id = interactions.interaction_id
),

final as (
    select
        * exclude (_raw, _id_rows),
        case when _problem is not null then to_json(_raw) end as _row_json
    from checked
)

select * from final
