-- bridge_quarters
-- Grain: one row per calendar quarter (UTC) from the quarter of the first interaction to
-- the quarter of the last. `quarter` is its label ('2026Q3'); data_from/data_to the
-- span of interaction dates inside it; `complete` = the data reach the quarter's last
-- day; last_active_date = the latest date any user is active (SPEC §3), the cut-off of
-- 7-day retention eligibility.
with interaction_span as (
    select min(activity_date) as first_date, max(activity_date) as last_date
    from int_interactions
),

last_active as (
    select max(activity_date) as last_active_date from int_user_active_days
),

quarter_starts as (
    select cast(unnest(generate_series(
        cast(date_trunc('quarter', first_date) as date),
        cast(date_trunc('quarter', last_date) as date),
        interval 3 month)) as date) as quarter_start
    from interaction_span
    where first_date is not null
),

final as (
    select
        year(q.quarter_start) || 'Q' || quarter(q.quarter_start) as quarter,
        q.quarter_start,
        cast(q.quarter_start + interval 3 month - interval 1 day as date) as quarter_end,
        greatest(q.quarter_start, s.first_date) as data_from,
        least(cast(q.quarter_start + interval 3 month - interval 1 day as date), s.last_date) as data_to,
        cast(q.quarter_start + interval 3 month - interval 1 day as date) <= s.last_date as complete,
        l.last_active_date
    from quarter_starts as q
    cross join interaction_span as s
    cross join last_active as l
)

select * from final order by quarter_start
