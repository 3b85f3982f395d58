-- audit_data_span
-- Grain: one row: the first and last UTC date with interactions in the warehouse (the
-- default audit date is the day after the last one).
with mart as (
    select activity_date, interactions from l6_daily
),

final as (
    select min(activity_date) as first_date, max(activity_date) as last_date,
           cast(coalesce(sum(interactions), 0) as bigint) as interactions
    from mart
)

select * from final
