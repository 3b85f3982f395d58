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

value_counts as (
    -- one pass, one row per period and distinct value of each variable: the bins are
    -- computed on these (thousands of rows when values repeat, as token counts and
    -- rounded confidences do; at worst one per interaction, as before)
    select
        period, feature, domain, input_tokens, confidence,
        grouping(feature, domain, input_tokens, confidence) as grouping_id,
        count(*) as n
    from selected
    group by grouping sets ((period, feature), (period, domain), (period, input_tokens), (period, confidence))
),

binned as (
    -- grouping_id: a bit set for each variable summed over (feature = 8 ... confidence = 1)
    select period, 'feature' as variable, feature as bin, n
    from value_counts where grouping_id = 7 and feature is not null
    union all
    select period, 'domain', domain, n
    from value_counts where grouping_id = 11 and domain is not null
    union all
    select period, 'input_tokens',
           cast(len(list_filter($input_tokens_edges, lambda e: e < input_tokens)) as varchar), n
    from value_counts where grouping_id = 13 and input_tokens is not null
    union all
    select period, 'confidence',
           cast(len(list_filter($confidence_edges, lambda e: e < confidence)) as varchar), n
    from value_counts where grouping_id = 14 and confidence is not null
),

final as (
    select variable, period, bin, cast(sum(n) as bigint) as n
    from binned
    group by all
    order by variable, period, bin
)

select * from final
