-- quarantine
-- Grain: one row per source row set aside by staging, with its reason code, the
-- column at fault and the raw row as JSON. Nothing is dropped without a row here
-- (exact duplicates are counted in meta_ingest_summary instead).
with users as (
    select 'users' as table_name, _problem, _row_json from chk_users where _problem is not null
),
interactions as (
    select 'interactions', _problem, _row_json from chk_interactions where _problem is not null
),
adjudications as (
    select 'adjudications', _problem, _row_json from chk_adjudications where _problem is not null
),
interventions as (
    select 'interventions', _problem, _row_json from chk_interventions where _problem is not null
),
user_activity as (
    select 'user_activity', _problem, _row_json from chk_user_activity where _problem is not null
),
support_tickets as (
    select 'support_tickets', _problem, _row_json from chk_support_tickets where _problem is not null
),
infra_costs as (
    select 'infra_costs', _problem, _row_json from chk_infra_costs where _problem is not null
),

unioned as (
    select * from users
    union all select * from interactions
    union all select * from adjudications
    union all select * from interventions
    union all select * from user_activity
    union all select * from support_tickets
    union all select * from infra_costs
),

final as (
    select
        table_name,
        _problem.reason as reason,
        _problem.col as column_name,
        cast(_row_json as varchar) as row_json
    from unioned
)

select * from final
