-- The practical limit for the benchmark: one hand-written query computing TCR, TTA
-- p50/p90 and CPVO by quarter × feature straight from the Parquet files (no staging,
-- no quarantine, no gates). Grain: quarter × feature.
-- Parameters: $interactions, $adjudications, $infra_costs (Parquet globs).
with interactions as (
    select * from read_parquet($interactions)
),

adjudications as (
    select * from read_parquet($adjudications)
),

infra as (
    select date_trunc('quarter', date) as quarter, feature, sum(cost_usd) as infra_usd
    from read_parquet($infra_costs)
    group by all
),

final_verdicts as (
    select interaction_id, arg_max(hallucinated, tier * 1e12 + epoch(ts)) as hallucinated
    from adjudications
    where tier in (1, 2)
    group by interaction_id
),

scored as (
    select
        date_trunc('quarter', i.ts) as quarter,
        i.feature,
        i.outcome = 'completed' as completed,
        i.outcome = 'completed' and not coalesce(v.hallucinated, false) as valid,
        (i.latency_ms + i.verification_ms) / 1000.0 as tta_s,
        i.cost_usd
    from interactions as i
    left join final_verdicts as v using (interaction_id)
),

by_slice as (
    select
        quarter,
        feature,
        avg(completed::int) as tcr,
        quantile_cont(tta_s, 0.5) filter (where valid) as tta_p50_s,
        quantile_cont(tta_s, 0.9) filter (where valid) as tta_p90_s,
        sum(cost_usd) as cost_usd,
        count(*) filter (where valid) as valid
    from scored
    group by all
),

final as (
    select
        by_slice.quarter, by_slice.feature, tcr, tta_p50_s, tta_p90_s,
        (cost_usd + coalesce(infra.infra_usd, 0)) / valid as cpvo_usd
    from by_slice
    left join infra using (quarter, feature)
    order by 1, 2
)

select * from final
