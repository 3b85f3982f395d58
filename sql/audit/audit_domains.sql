-- audit_domains
-- Grain: one row per domain with interactions in [$date_from, $date_to] (the domains a
-- per-domain guardrail is checked on), largest first.
-- Parameters: $date_from, $date_to (dates, inclusive).
with mart as (
    select domain, interactions from l6_daily
    where activity_date between $date_from and $date_to
),

final as (
    select domain, cast(sum(interactions) as bigint) as interactions
    from mart
    group by domain
    order by interactions desc, domain
)

select * from final
