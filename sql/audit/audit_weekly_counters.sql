-- audit_weekly_counters
-- Grain: one row per ISO week (week_start = its Monday, UTC) that has interactions
-- with activity_date in [$date_from, $date_to].
-- The behavior and counter-metric counts the audit sets beside the L6 metrics (SPEC §6):
--   requeried             interactions followed by another interaction of the same user
--                         on the same feature within $requery_seconds (the next one by
--                         ts; 0 <= gap <= $requery_seconds: of k interactions at one ts, at
--                         least k - 1 count, whatever their order). The follow-up may fall
--                         after $date_to (one day of look-ahead).
--   completed_escalated   completed interactions with at least one intervention of kind
--                         'escalation' at or after the interaction's ts (escalated after a
--                         completed outcome)
--   ai_users              distinct users with an interaction that week
--   tickets               support tickets created that week (UTC date of created_ts)
--   ai_user_tickets       of those, tickets filed by a user with an AI interaction the
--                         same week (the numerator of "support contacts per 1,000 AI
--                         interactions")
-- Parameters: $date_from, $date_to (dates, inclusive), $requery_seconds (integer).
with selected as not materialized (
    select interaction_id, user_id, feature, ts, activity_date, is_completed
    from int_interactions
    where activity_date between $date_from and $date_to + 1
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

flagged as (
    -- flagged before the window, which then carries no interaction_id (a unique string)
    select
        selected.* exclude (interaction_id),
        selected.is_completed and escalated_interactions.interaction_id is not null
            as is_completed_escalated
    from selected
    left join escalated_interactions using (interaction_id)
),

sequenced as (
    -- interactions at the same ts may come in either order: the same number of them
    -- count as requeried either way, in the same week, so the counts do not depend on it
    select
        *,
        lead(ts) over (partition by user_id, feature order by ts) as next_ts
    from flagged
),

interaction_flags as (
    select
        cast(date_trunc('week', activity_date) as date) as week_start,
        user_id,
        is_completed,
        coalesce(next_ts <= ts + to_seconds(cast($requery_seconds as bigint)), false) as is_requeried,
        is_completed_escalated
    from sequenced
    where activity_date between $date_from and $date_to
),

user_weeks as (
    -- one row per user and week: the only consumer of the 10M-row flags (so they are
    -- never materialized), and the AI users of a week are its rows
    select
        week_start,
        user_id,
        count(*) as interactions,
        count(*) filter (where is_completed) as completed,
        count(*) filter (where is_requeried) as requeried,
        count(*) filter (where is_completed_escalated) as completed_escalated
    from interaction_flags
    group by week_start, user_id
),

interaction_counts as (
    select
        week_start,
        cast(sum(interactions) as bigint) as interactions,
        cast(sum(completed) as bigint) as completed,
        cast(sum(requeried) as bigint) as requeried,
        cast(sum(completed_escalated) as bigint) as completed_escalated,
        count(*) as ai_users
    from user_weeks
    group by week_start
),

ai_user_weeks as (
    select week_start, user_id from user_weeks
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
