-- audit_tier_agreement
-- Grain: one row per period ('reference' | 'audit') × tier pair ('1v2', '1v3', '2v3')
-- × verdict of the first tier × verdict of the second tier, counting interactions that
-- have a verdict in both tiers. A tier's verdict is its latest one
-- (int_interactions.tier<k>_hallucinated).
-- Parameters: $reference_start, $reference_end, $window_start, $window_end (dates, inclusive).
with selected as (
    select
        case when activity_date between $window_start and $window_end
             then 'audit' else 'reference' end as period,
        tier1_hallucinated,
        tier2_hallucinated,
        tier3_hallucinated
    from int_interactions
    where activity_date between $reference_start and $reference_end
       or activity_date between $window_start and $window_end
),

pairs as (
    select period, '1v2' as pair, tier1_hallucinated as first_verdict, tier2_hallucinated as second_verdict
    from selected where tier1_hallucinated is not null and tier2_hallucinated is not null
    union all
    select period, '1v3', tier1_hallucinated, tier3_hallucinated
    from selected where tier1_hallucinated is not null and tier3_hallucinated is not null
    union all
    select period, '2v3', tier2_hallucinated, tier3_hallucinated
    from selected where tier2_hallucinated is not null and tier3_hallucinated is not null
),

final as (
    select period, pair, first_verdict, second_verdict, count(*) as n
    from pairs
    group by all
    order by period, pair, first_verdict, second_verdict
)

select * from final
