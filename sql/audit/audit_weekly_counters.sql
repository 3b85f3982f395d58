-- audit_weekly_counters
-- Grain: one row per ISO week (week_start = its Monday, UTC) that has interactions
-- with activity_date in [$date_from, $date_to].
-- The behavior and counter-metric counts the audit sets beside the L6 metrics (SPEC §6):
--   requeried             interactions followed by another interaction of the same user
--                         on the same feature within $requery_seconds (ordered by ts,
--                         then interaction_id; 0 <= gap <= $requery_seconds). The
--                         follow-up may fall after $date_to (one day of look-ahead).
--   completed_escalated   completed interactions with at least one intervention of kind
--                         'escalation' at or after the interaction's ts (escalated after a
--                         completed outcome)
--   ai_users              distinct users with an interaction that week
--   tickets               support tickets created that week (UTC date of created_ts)
--   ai_user_tickets       of those, tickets filed by a user with an AI interaction the
--                         same week (the numerator of "support contacts per 1,000 AI
--                         interactions")
-- Parameters: $date_from, $date_to (dates, inclusive), $requery_seconds (integer).
with selected as (
    select interaction_id, user_id, feature, ts, activity_date, is_completed
    from int_interactions
    where activity_date between $date_from and $date_to + 1
),

sequenced as (
    select
        *,
        lead(ts) over (partition by user_id, feature order by ts, interaction_id) as next_ts
    from selected
),

escalated_interactions as (
    -- escalated after the output was given: an escalation event at or after the
    -- interaction's ts (an event without ts counts: it can only follow the output)
    select distinct escalations.interaction_id
    from stg_interventions as escalations
    join selected on escalations.interaction_id = selected.interaction_id
    where escalations.kind = 'escalation'
      and (escalations.ts is null or escalations.ts >= selected.ts)
),

interaction_flags as (
    select
        cast(date_trunc('week', sequenced.activity_date) as date) as week_start,
        sequenced.user_id,
        sequenced.is_completed,
        coalesce(sequenced.next_ts <= sequenced.ts + to_seconds(cast($requery_seconds as bigint)), false)
            as is_requeried,
        sequenced.is_completed and escalated_interactions.interaction_id is not null
            as is_completed_escalated
    from sequenced
    left join escalated_interactions using (interaction_id)
    where sequenced.activity_date between $date_from and $date_to
),

interaction_counts as (
    select
        week_start,
        count(*) as interactions,
        count(*) filter (where is_completed) as completed,
        count(*) filter (where is_requeried) as requeried,
        count(*) filter (where is_completed_escalated) as completed_escalated,
        count(distinct user_id) as ai_users
    from interaction_flags
    group by week_start
),

ai_user_weeks as (
    select distinct week_start, user_id from interaction_flags
),

tickets as (
    select
        cast(date_trunc('week', cast(created_ts as date)) as date) as week_start,
        user_id
    from stg_support_tickets
    where cast(created_ts as date) between $date_from and $date_to
),

ticket_counts as (
    select
        tickets.week_start,
        count(*) as tickets,
        count(ai_user_weeks.user_id) as ai_user_tickets
    from tickets
    left join ai_user_weeks
        on tickets.week_start = ai_user_weeks.week_start
       and tickets.user_id = ai_user_weeks.user_id
    group by tickets.week_start
),

final as (
    select
        interaction_counts.week_start,
        interaction_counts.interactions,
        interaction_counts.completed,
        interaction_counts.requeried,
        interaction_counts.completed_escalated,
        interaction_counts.ai_users,
        coalesce(ticket_counts.tickets, 0) as tickets,
        coalesce(ticket_counts.ai_user_tickets, 0) as ai_user_tickets
    from interaction_counts
    left join ticket_counts using (week_start)
    order by week_start
)

select * from final
