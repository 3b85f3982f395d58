-- audit_drift_edges
-- Grain: one row per period ('reference' | 'audit'): the deciles (the 9 inner cut
-- points, continuous quantiles with linear interpolation, as NumPy's default) of the
-- numeric inputs whose drift the audit measures, and the non-null counts behind them.
-- The reference window's deciles cut the PSI bins; the audit window's are shown beside.
-- Parameters: $reference_start, $reference_end, $window_start, $window_end (dates,
-- inclusive), $quantiles (the 9 probabilities 0.1 ... 0.9).
with selected as (
    select
        case when activity_date between $window_start and $window_end
             then 'audit' else 'reference' end as period,
        input_tokens,
        confidence
    from int_interactions
    where activity_date between $reference_start and $reference_end
       or activity_date between $window_start and $window_end
),

final as (
    select
        period,
        quantile_cont(cast(input_tokens as double), $quantiles) as input_tokens_deciles,
        quantile_cont(confidence, $quantiles) as confidence_deciles,
        count(input_tokens) as input_tokens_n,
        count(confidence) as confidence_n
    from selected
    group by period
    order by period
)

select * from final
