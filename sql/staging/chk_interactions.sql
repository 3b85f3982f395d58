-- chk_interactions
-- Grain: one row per distinct source row of `interactions`, typed (timestamps
-- converted to UTC; a timestamp without a zone is UTC), with `_problem` = the first
-- row-level problem found ({reason, col}) or null, and `_row_json` (the raw row, only
-- for rows with a problem). Orphan = user_id not in stg_users.
-- Exact duplicates can only share an id, so only rows whose id repeats (or is null)
-- go through DISTINCT: the common case costs one hash aggregate on the id.
-- Parameters: $as_of (timestamp, UTC): later timestamps are in the future.
with raw_rows as (
    select src as _raw from src_interactions as src
),

repeated_ids as (
    -- ids that occur more than once (few): only their rows go through DISTINCT, and the
    -- join that picks them builds its hash table on this small set
    select _raw.interaction_id as id from raw_rows where _raw.interaction_id is not null group by all having count(*) > 1
),

single_rows as (
    select raw_rows._raw, 1 as _id_rows
    from raw_rows
    anti join repeated_ids on raw_rows._raw.interaction_id = repeated_ids.id
    where raw_rows._raw.interaction_id is not null
),

repeated_rows as (
    select _raw, count(*) over (partition by _raw.interaction_id) as _id_rows
    from (
        select distinct _raw from raw_rows
        where _raw.interaction_id is null or _raw.interaction_id in (select id from repeated_ids)
    )
),

source as (
    select * from single_rows
    union all
    select * from repeated_rows
),

users as (
    select user_id from stg_users
),

typed as (
    select
        cast(_raw.interaction_id as varchar) as interaction_id,
        utc_timestamp(_raw.ts) as ts,
        cast(_raw.user_id as varchar) as user_id,
        cast(_raw.session_id as varchar) as session_id,
        cast(_raw.feature as varchar) as feature,
        cast(_raw.domain as varchar) as domain,
        cast(_raw.model_version as varchar) as model_version,
        try_cast(_raw.latency_ms as double) as latency_ms,
        try_cast(_raw.verification_ms as double) as verification_ms,
        try_cast(try_cast(_raw.input_tokens as double) as bigint) as input_tokens,
        try_cast(try_cast(_raw.output_tokens as double) as bigint) as output_tokens,
        try_cast(_raw.cost_usd as double) as cost_usd,
        try_cast(_raw.confidence as double) as confidence,
        cast(_raw.outcome as varchar) as outcome,
        _raw,
        _id_rows
    from source
),

checked as (
    select
        typed.*,
        case
            when interaction_id is null then {'reason': 'null_id', 'col': 'interaction_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'interaction_id'}
            when _raw.ts is not null and ts is null then {'reason': 'unparseable', 'col': 'ts'}
            when ts is null then {'reason': 'null_required', 'col': 'ts'}
            when typed.user_id is null then {'reason': 'null_required', 'col': 'user_id'}
            when feature is null then {'reason': 'null_required', 'col': 'feature'}
            when domain is null then {'reason': 'null_required', 'col': 'domain'}
            when model_version is null then {'reason': 'null_required', 'col': 'model_version'}
            when outcome is null then {'reason': 'null_required', 'col': 'outcome'}
            when _raw.latency_ms is not null and latency_ms is null then {'reason': 'unparseable', 'col': 'latency_ms'}
            when _raw.verification_ms is not null and verification_ms is null then {'reason': 'unparseable', 'col': 'verification_ms'}
            when _raw.input_tokens is not null and input_tokens is null then {'reason': 'unparseable', 'col': 'input_tokens'}
            when _raw.output_tokens is not null and output_tokens is null then {'reason': 'unparseable', 'col': 'output_tokens'}
            when _raw.cost_usd is not null and cost_usd is null then {'reason': 'unparseable', 'col': 'cost_usd'}
            when _raw.confidence is not null and confidence is null then {'reason': 'unparseable', 'col': 'confidence'}
            when latency_ms < 0 or isnan(latency_ms) then {'reason': 'out_of_range', 'col': 'latency_ms'}
            when verification_ms < 0 or isnan(verification_ms) then {'reason': 'out_of_range', 'col': 'verification_ms'}
            when input_tokens < 0 then {'reason': 'out_of_range', 'col': 'input_tokens'}
            when output_tokens < 0 then {'reason': 'out_of_range', 'col': 'output_tokens'}
            when cost_usd < 0 or isnan(cost_usd) then {'reason': 'out_of_range', 'col': 'cost_usd'}
            when confidence < 0 or confidence > 1 or isnan(confidence) then {'reason': 'out_of_range', 'col': 'confidence'}
            when outcome not in ('completed', 'corrected', 'fallback', 'escalated', 'abandoned')
                then {'reason': 'unknown_enum', 'col': 'outcome'}
            when ts > $as_of then {'reason': 'future_ts', 'col': 'ts'}
            when users.user_id is null then {'reason': 'orphan_key', 'col': 'user_id'}
        end as _problem
    from typed
    left join users on typed.user_id = users.user_id
),

final as (
    select
        * exclude (_raw, _id_rows),
        case when _problem is not null then to_json(_raw) end as _row_json
    from checked
)

select * from final
