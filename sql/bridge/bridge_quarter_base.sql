-- bridge_quarter_base
-- Grain: quarter (bridge_quarters) x feature. The treatment population's AI activity in
-- the quarter (interactions of users with experiment_group = 'treatment' whose
-- signup_date <= the quarter's last day), the sums the bridge nodes are built from
-- (volumes scaled to the treatment population), plus all users' interactions and the
-- feature's infra cost (to allocate platform cost to the treatment population by its
-- share of the feature's interactions).
--   ce_*            interactions with outcome corrected or escalated, and the human
--                   intervention seconds recorded on them (sum and sum of squares per
--                   interaction, for the interval of the mean)
--   tta_*           valid outputs with a TTA: count, sum and sum of squares of tta_s
--   all_*           every user's interactions (the L6 population): count, cost, valid
--                   outputs, sum of squared cost and cost of valid outputs (the interval of CPVO)
with quarters as (
    select quarter, quarter_start, quarter_end from bridge_quarters
),

interactions as (
    select
        quarters.quarter,
        i.feature,
        i.experiment_group = 'treatment' and i.signup_date <= quarters.quarter_end as is_treatment,
        i.is_completed,
        i.is_valid,
        i.outcome in ('corrected', 'escalated') as is_ce,
        i.intervention_s,
        i.tta_s,
        i.cost_usd
    from int_interactions as i
    join quarters on quarters.quarter_start = cast(date_trunc('quarter', i.activity_date) as date)
),

activity as (
    select
        quarter,
        feature,
        count(*) as all_interactions,
        count(*) filter (where is_treatment) as interactions,
        count(*) filter (where is_treatment and is_completed) as completed,
        count(*) filter (where is_treatment and is_valid) as valid,
        count(*) filter (where is_treatment and is_ce) as ce_n,
        coalesce(sum(intervention_s) filter (where is_treatment and is_ce), 0) as ce_intervention_s,
        coalesce(sum(intervention_s * intervention_s) filter (where is_treatment and is_ce), 0)
            as ce_intervention_s_sq,
        count(tta_s) filter (where is_treatment) as tta_n,
        coalesce(sum(tta_s) filter (where is_treatment), 0) as tta_sum_s,
        coalesce(sum(tta_s * tta_s) filter (where is_treatment), 0) as tta_sumsq_s,
        coalesce(sum(cost_usd) filter (where is_treatment), 0) as cost_usd,
        coalesce(sum(cost_usd), 0) as all_cost_usd,
        count(*) filter (where is_valid) as all_valid,
        coalesce(sum(cost_usd * cost_usd), 0) as all_cost_sq,
        coalesce(sum(cost_usd) filter (where is_valid), 0) as all_cost_valid
    from interactions
    group by all
),

infra as (
    select quarters.quarter, infra.feature, sum(infra.cost_usd) as infra_cost_usd
    from stg_infra_costs as infra
    join quarters on quarters.quarter_start = cast(date_trunc('quarter', infra.date) as date)
    group by all
),

final as (
    select activity.*, coalesce(infra.infra_cost_usd, 0) as infra_cost_usd
    from activity
    left join infra on infra.quarter = activity.quarter and infra.feature = activity.feature
)

select * from final order by quarter, feature
