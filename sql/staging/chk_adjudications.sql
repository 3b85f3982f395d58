-- chk_adjudications
-- Grain: one row per distinct source row of `adjudications` (a verdict has no id of
-- its own: only exact duplicates are removed), typed, with `_problem` or null and
-- `_row_json` for problem rows. Orphan = interaction_id not in stg_interactions.
-- Parameters: $as_of.
with source as (
    select distinct src as _raw from src_adjudications as src
),

interactions as (
    select interaction_id from stg_interactions
),

typed as (
    select
        cast(_raw.interaction_id as varchar) as interaction_id,
        try_cast(try_cast(_raw.tier as double) as integer) as tier,
        try_cast(lower(trim(cast(_raw.hallucinated as varchar))) as boolean) as hallucinated,
        utc_timestamp(_raw.ts) as ts,
        _raw
    from source
),

checked as (
    select
        typed.*,
        case
            when typed.interaction_id is null then {'reason': 'null_id', 'col': 'interaction_id'}
            when _raw.tier is not null and tier is null then {'reason': 'unparseable', 'col': 'tier'}
            when tier is null then {'reason': 'null_required', 'col': 'tier'}
            when tier not in (1, 2, 3) then {'reason': 'unknown_enum', 'col': 'tier'}
            when _raw.hallucinated is not null and hallucinated is null then {'reason': 'unparseable', 'col': 'hallucinated'}
            when hallucinated is null then {'reason': 'null_required', 'col': 'hallucinated'}
            when _raw.ts is not null and ts is null then {'reason': 'unparseable', 'col': 'ts'}
            when ts > $as_of then {'reason': 'future_ts', 'col': 'ts'}
            when interactions.interaction_id is null then {'reason': 'orphan_key', 'col': 'interaction_id'}
        end as _problem
    from typed
    left join interactions on typed.interaction_id = interactions.interaction_id
),

final as (
    select
        * exclude (_raw),
        case when _problem is not null then to_json(_raw) end as _row_json
    from checked
)

select * from final
