-- stg_infra_costs
-- Grain: one fixed platform cost line (date × feature; several lines may share a key
-- and add up). Costs not in interactions.cost_usd.
-- Materialized as a VIEW of chk_infra_costs (the checked rows are written once).
with checked as (
    select * from chk_infra_costs
),

final as (
    select date, feature, cost_usd
    from checked
    where _problem is null
)

select * from final
