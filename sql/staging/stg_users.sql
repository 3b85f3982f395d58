-- stg_users
-- Grain: one row per user (user_id unique, not null). Valid rows of chk_users.
-- Materialized as a VIEW of chk_users (the checked rows are written once).
with checked as (
    select * from chk_users
),

final as (
    select user_id, signup_date, segment, experiment_group
    from checked
    where _problem is null
)

select * from final
