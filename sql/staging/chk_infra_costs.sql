-- chk_infra_costs
-- Grain: one row per distinct source row of `infra_costs` (optional table: empty
-- when the source has none), typed, with `_problem` or null.
with source as (
    select distinct * from src_infra_costs
),

typed as (
    select
        coalesce(try_cast(date as date), try_cast(try_cast(date as timestamptz) as date)) as date,
        cast(feature as varchar) as feature,
        try_cast(cost_usd as double) as cost_usd,
        date is not null as _raw_date,
        cost_usd is not null as _raw_cost_usd,
        to_json(source) as _row_json
    from source
),

final as (
    select
        *,
        case
            when _raw_date and date is null then {'reason': 'unparseable', 'col': 'date'}
            when date is null then {'reason': 'null_required', 'col': 'date'}
            when feature is null then {'reason': 'null_required', 'col': 'feature'}
            when _raw_cost_usd and cost_usd is null then {'reason': 'unparseable', 'col': 'cost_usd'}
            when cost_usd is null then {'reason': 'null_required', 'col': 'cost_usd'}
            when cost_usd < 0 or isnan(cost_usd) then {'reason': 'out_of_range', 'col': 'cost_usd'}
        end as _problem
    from typed
)

select * exclude (_raw_date, _raw_cost_usd) from final
