-- chk_infra_costs
-- Grain: one row per distinct source row of `infra_costs` (optional table: empty when
-- the source has none), typed, with `_problem` or null and `_row_json` for problem rows.
with source as (
    select distinct src as _raw from src_infra_costs as src
),

typed as (
    select
        coalesce(try_cast(_raw.date as date), try_cast(try_cast(_raw.date as timestamptz) as date)) as date,
        cast(_raw.feature as varchar) as feature,
        try_cast(_raw.cost_usd as double) as cost_usd,
        _raw
    from source
),

checked as (
    select
        *,
        case
            when _raw.date is not null and date is null then {'reason': 'unparseable', 'col': 'date'}
            when date is null then {'reason': 'null_required', 'col': 'date'}
            when feature is null then {'reason': 'null_required', 'col': 'feature'}
            when _raw.cost_usd is not null and cost_usd is null then {'reason': 'unparseable', 'col': 'cost_usd'}
            when cost_usd is null then {'reason': 'null_required', 'col': 'cost_usd'}
            when cost_usd < 0 or isnan(cost_usd) then {'reason': 'out_of_range', 'col': 'cost_usd'}
        end as _problem
    from typed
),

final as (
    select
        * exclude (_raw),
        case when _problem is not null then to_json(_raw) end as _row_json
    from checked
)

select * from final
