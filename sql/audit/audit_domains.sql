-- audit_domains
-- Grain: one row per domain with interactions in [$date_from, $date_to] (the domains a
-- per-domain guardrail is checked on), largest first, with the additive L6 components
-- (l6_daily) that TCR, HR and HitL-F per domain are ratios of.
-- Parameters: $date_from, $date_to (dates, inclusive).
with mart as (
    select domain, interactions, completed, adjudicated, hallucinated, interventions
    from l6_daily
    where activity_date between $date_from and $date_to
),

final as (
    select
        domain,
        cast(sum(interactions) as bigint) as interactions,
        cast(sum(completed) as bigint) as completed,
        cast(sum(adjudicated) as bigint) as adjudicated,
        cast(sum(hallucinated) as bigint) as hallucinated,
        cast(sum(interventions) as bigint) as interventions
    from mart
    group by domain
    order by interactions desc, domain
)

select * from final
