-- audit_drift_counts
-- Grain: one row per variable × period ('reference' | 'audit') × bin, with the number
-- of interactions in that bin (bins with no rows are absent).
-- Categorical variables (feature, domain): one bin per value. Numeric variables
-- (input_tokens, confidence): bin i = the number of reference cut points strictly below
-- the value, so bins are (-inf, e1], (e1, e2], ..., (e9, +inf) (right-closed, as
-- numpy.searchsorted(edges, x, side='left')). Null values are left out (confidence is
-- nullable; the other inputs are not null by contract).
-- Parameters: $reference_start, $reference_end, $window_start, $window_end (dates,
-- inclusive), $input_tokens_edges, $confidence_edges (ascending cut points).
with selected as (
    select
        case when activity_date between $window_start and $window_end
             then 'audit' else 'reference' end as period,
        feature,
        domain,
        cast(input_tokens as double) as input_tokens,
        confidence
    from int_interactions
    where activity_date between $reference_start and $reference_end
       or activity_date between $window_start and $window_end
),

binned as (
    select period, 'feature' as variable, feature as bin from selected where feature is not null
    union all
    select period, 'domain', domain from selected where domain is not null
    union all
    select period, 'input_tokens',
           cast(len(list_filter($input_tokens_edges, lambda e: e < input_tokens)) as varchar)
    from selected where input_tokens is not null
    union all
    select period, 'confidence',
           cast(len(list_filter($confidence_edges, lambda e: e < confidence)) as varchar)
    from selected where confidence is not null
),

final as (
    select variable, period, bin, count(*) as n
    from binned
    group by all
    order by variable, period, bin
)

select * from final
