-- bridge_cells_interaction
-- Grain: ISO week (week_start, Monday) x feature x domain, over all interactions: the
-- cells of interaction-level dose-response edges (HR -> corrections and escalations per
-- 100 queries, TTA -> minutes saved per task, ...). slice = 'feature/domain'.
--   tcr, hr (final verdict, over adjudicated), corrections_escalations_per_100 (outcome
--   corrected or escalated), tta_p50_s / tta_mean_s (valid outputs with a TTA),
--   cpvo_usd (cost_usd / valid; infra costs are per feature-day, not per domain, and
--   left out of cells), valid_per_1k.
-- minutes_saved_per_task per cell is finished in pipelines/bridge.py (it needs the
-- manual baseline of the feature from config/assumptions.toml).
with interactions as (
    select * from int_interactions
),

final as (
    select
        cast(date_trunc('week', activity_date) as date) as week_start,
        feature,
        domain,
        feature || '/' || domain as slice,
        count(*) as interactions,
        count(*) filter (where is_completed) as completed,
        count(is_hallucinated) as adjudicated,
        count(*) filter (where is_hallucinated) as hallucinated,
        count(*) filter (where outcome in ('corrected', 'escalated')) as corrections_escalations,
        count(*) filter (where is_valid) as valid,
        coalesce(sum(cost_usd), 0) as cost_usd,
        count(tta_s) as tta_n,
        avg(tta_s) as tta_mean_s,
        quantile_cont(tta_s, 0.5) as tta_p50_s,
        count(*) filter (where is_completed) / count(*) as tcr,
        count(*) filter (where is_hallucinated) / nullif(count(is_hallucinated), 0) as hr,
        100.0 * count(*) filter (where outcome in ('corrected', 'escalated')) / count(*)
            as corrections_escalations_per_100,
        coalesce(sum(cost_usd), 0) / nullif(count(*) filter (where is_valid), 0) as cpvo_usd,
        1000.0 * count(*) filter (where is_valid) / count(*) as valid_per_1k
    from interactions
    group by all
)

select * from final order by week_start, slice
