-- chk_adjudications
-- Grain: one row per distinct source row of `adjudications` (a verdict has no id of
-- its own: only exact duplicates are removed), typed, with `_problem` or null.
-- Orphan = interaction_id not in stg_interactions. Parameters: $as_of.
with source as (
    select distinct * from src_adjudications
),

interactions as (
    select interaction_id from stg_interactions
),

typed as (
    select
        cast(interaction_id as varchar) as interaction_id,
        try_cast(try_cast(tier as double) as integer) as tier,
        try_cast(lower(trim(cast(hallucinated as varchar))) as boolean) as hallucinated,
        try_cast(try_cast(ts as timestamptz) as timestamp) as ts,
        tier is not null as _raw_tier,
        hallucinated is not null as _raw_hallucinated,
        ts is not null as _raw_ts,
        to_json(source) as _row_json
    from source
),

final as (
    select
        typed.*,
        case
            when typed.interaction_id is null then {'reason': 'null_id', 'col': 'interaction_id'}
            when _raw_tier and tier is null then {'reason': 'unparseable', 'col': 'tier'}
            when tier is null then {'reason': 'null_required', 'col': 'tier'}
            when tier not in (1, 2, 3) then {'reason': 'unknown_enum', 'col': 'tier'}
            when _raw_hallucinated and hallucinated is null then {'reason': 'unparseable', 'col': 'hallucinated'}
            when hallucinated is null then {'reason': 'null_required', 'col': 'hallucinated'}
            when _raw_ts and ts is null then {'reason': 'unparseable', 'col': 'ts'}
            when ts > $as_of then {'reason': 'future_ts', 'col': 'ts'}
            when interactions.interaction_id is null then {'reason': 'orphan_key', 'col': 'interaction_id'}
        end as _problem
    from typed
    left join interactions on typed.interaction_id = interactions.interaction_id
)

select * exclude (_raw_tier, _raw_hallucinated, _raw_ts) from final
