{{ config(materialized='table') }}

{#- Therapy comparison by outcome: pooled estimates (statsmodels, see int_pooled_outcomes) with
    95 % CI, tau2, I2, k and N, crude totals, the single-study flag and what was excluded. -#}
with pooled as (

    select * from {{ ref('int_pooled_outcomes') }}

),

classes as (

    select therapy_class, label from {{ ref('therapy_classes') }}

),

final as (

    select
        pooled.therapy_class || coalesce(':' || pooled.msc_source, '') || ':' || pooled.outcome || ':'
            || pooled.diabetes_type || ':' || pooled.measure || ':' || coalesce(nullif(pooled.unit_normalised, ''), '-') as comparison_id,
        pooled.therapy_class,
        classes.label as therapy_label,
        pooled.msc_source,
        pooled.outcome,
        pooled.diabetes_type,
        pooled.measure,
        nullif(pooled.unit_normalised, '') as unit,
        cast(pooled.k_studies as integer) as k_studies,
        cast(pooled.n_patients as integer) as n_patients,
        cast(pooled.n_events as integer) as n_events,
        pooled.pooled_estimate,
        pooled.ci_low,
        pooled.ci_high,
        pooled.tau2,
        pooled.i2,
        pooled.crude_proportion,
        pooled.scale,
        pooled.method,
        pooled.is_single_study,
        pooled.k_studies = 0 as has_no_poolable_data,
        cast(pooled.excluded_overlapping_rows as integer) as excluded_overlapping_rows,
        cast(pooled.excluded_unverified_rows as integer) as excluded_unverified_rows,
        cast(pooled.rows_not_poolable as integer) as rows_not_poolable,
        cast(pooled.rows_other_timepoints as integer) as rows_other_timepoints,
        pooled.study_ids,
        pooled.outcome_fact_ids,
        {{ var('include_overlapping_cohorts', false) }} as includes_overlapping_cohorts,
        {{ var('include_unverified', false) }} as includes_unverified
    from pooled
    left join classes using (therapy_class)

)

select * from final
