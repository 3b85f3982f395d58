-- audit_calibration
-- Grain: one row per period ('reference' | 'audit') × confidence bin (0 ... 9) that has
-- interactions with both a stated confidence and a tier-2 verdict (the latest one).
-- Bins are equal-width on [0, 1]: bin b holds b/10 <= confidence < (b+1)/10, the last
-- bin is closed (confidence = 1 falls in bin 9): bin = the number of cut points
-- $bin_edges (1/10 ... 9/10) at or below the confidence.
-- correct = the tier-2 verdict is "not hallucinated".
-- Parameters: $reference_start, $reference_end, $window_start, $window_end (dates,
-- inclusive), $bin_edges.
with selected as (
    select
        case when activity_date between $window_start and $window_end
             then 'audit' else 'reference' end as period,
        confidence,
        not tier2_hallucinated as is_correct
    from int_interactions
    where (activity_date between $reference_start and $reference_end
           or activity_date between $window_start and $window_end)
      and confidence is not null
      and tier2_hallucinated is not null
),

final as (
    select
        period,
        len(list_filter($bin_edges, lambda e: e <= confidence)) as bin,
        count(*) as n,
        count(*) filter (where is_correct) as correct,
        sum(confidence) as sum_confidence
    from selected
    group by all
    order by period, bin
)

select * from final
