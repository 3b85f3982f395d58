-- chk_interactions
-- Grain: one row per distinct source row of `interactions`, typed (timestamps
-- converted to UTC; a timestamp without a zone is UTC), with `_problem` = the first
-- row-level problem found or null. Orphan = user_id not in stg_users.
-- Parameters: $as_of (timestamp, UTC): later timestamps are in the future.
with source as (
    select distinct * from src_interactions
),

users as (
    select user_id from stg_users
),

typed as (
    select
        cast(interaction_id as varchar) as interaction_id,
        try_cast(try_cast(ts as timestamptz) as timestamp) as ts,
        cast(user_id as varchar) as user_id,
        cast(session_id as varchar) as session_id,
        cast(feature as varchar) as feature,
        cast(domain as varchar) as domain,
        cast(model_version as varchar) as model_version,
        try_cast(latency_ms as double) as latency_ms,
        try_cast(verification_ms as double) as verification_ms,
        try_cast(try_cast(input_tokens as double) as bigint) as input_tokens,
        try_cast(try_cast(output_tokens as double) as bigint) as output_tokens,
        try_cast(cost_usd as double) as cost_usd,
        try_cast(confidence as double) as confidence,
        cast(outcome as varchar) as outcome,
        -- which raw values were present (to tell "unparseable" from "null")
        ts is not null as _raw_ts,
        latency_ms is not null as _raw_latency_ms,
        verification_ms is not null as _raw_verification_ms,
        input_tokens is not null as _raw_input_tokens,
        output_tokens is not null as _raw_output_tokens,
        cost_usd is not null as _raw_cost_usd,
        confidence is not null as _raw_confidence,
        to_json(source) as _row_json
    from source
),

id_counts as (
    select *, count(*) over (partition by interaction_id) as _id_rows
    from typed
),

final as (
    select
        id_counts.*,
        case
            when interaction_id is null then {'reason': 'null_id', 'col': 'interaction_id'}
            when _id_rows > 1 then {'reason': 'duplicate_id', 'col': 'interaction_id'}
            when _raw_ts and ts is null then {'reason': 'unparseable', 'col': 'ts'}
            when ts is null then {'reason': 'null_required', 'col': 'ts'}
            when id_counts.user_id is null then {'reason': 'null_required', 'col': 'user_id'}
            when feature is null then {'reason': 'null_required', 'col': 'feature'}
            when domain is null then {'reason': 'null_required', 'col': 'domain'}
            when model_version is null then {'reason': 'null_required', 'col': 'model_version'}
            when outcome is null then {'reason': 'null_required', 'col': 'outcome'}
            when _raw_latency_ms and latency_ms is null then {'reason': 'unparseable', 'col': 'latency_ms'}
            when _raw_verification_ms and verification_ms is null then {'reason': 'unparseable', 'col': 'verification_ms'}
            when _raw_input_tokens and input_tokens is null then {'reason': 'unparseable', 'col': 'input_tokens'}
            when _raw_output_tokens and output_tokens is null then {'reason': 'unparseable', 'col': 'output_tokens'}
            when _raw_cost_usd and cost_usd is null then {'reason': 'unparseable', 'col': 'cost_usd'}
            when _raw_confidence and confidence is null then {'reason': 'unparseable', 'col': 'confidence'}
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
    from id_counts
    left join users on id_counts.user_id = users.user_id
)

select * exclude (
    _raw_ts, _raw_latency_ms, _raw_verification_ms, _raw_input_tokens,
    _raw_output_tokens, _raw_cost_usd, _raw_confidence, _id_rows
)
from final
