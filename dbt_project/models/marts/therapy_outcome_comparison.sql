{{ config(materialized='table') }}

{#- Therapy comparison by outcome, definition and follow-up window, precomputed for every
    scenario (verified only / include overlapping reports / randomised only): pooled ESTIMATES
    with their interval, method, prediction interval, k cohorts and N, and the caveats to show
    beside them (see int_pooled_outcomes). Dashboards and BI only filter this table. -#}
with pooled as (

    select * from {{ ref('int_pooled_outcomes') }}

),

classes as (

    select therapy_class, label from {{ ref('therapy_classes') }}

),

definitions as (

    select definition_id, label as definition_label, is_headline as is_headline_definition
    from {{ ref('outcome_definitions') }}

),

windows as (

    select window_id, label as window_label, sort_order as window_order, is_headline_default
    from {{ ref('followup_windows') }}

),

final as (

    select
        concat_ws(':',
            case when pooled.verified_only then 'verified' else 'all_sources' end,
            case when pooled.include_overlapping then 'with_overlaps' else 'no_overlaps' end,
            case when pooled.randomised_only then 'randomised' else 'any_design' end,
            pooled.therapy_class, coalesce(pooled.msc_source, '-'), pooled.diabetes_type,
            pooled.outcome, pooled.definition_id, pooled.window_id) as comparison_id,
        pooled.verified_only,
        pooled.include_overlapping,
        pooled.randomised_only,
        pooled.therapy_class,
        classes.label || case when pooled.msc_source = 'all sources' then ' (all MSC sources pooled)' else '' end as therapy_label,
        pooled.msc_source,
        pooled.diabetes_type,
        pooled.outcome,
        pooled.definition_id,
        definitions.definition_label,
        pooled.window_id,
        windows.window_label,
        cast(windows.window_order as integer) as window_order,
        pooled.timepoints_used,
        pooled.k_cohorts,
        pooled.n_participants,
        pooled.n_events,
        pooled.estimate,
        pooled.ci_low,
        pooled.ci_high,
        pooled.pi_low,
        pooled.pi_high,
        pooled.raw_proportion,
        pooled.method,
        pooled.tau2,
        pooled.tau2_dl,
        pooled.i2,
        pooled.estimate_dl,
        pooled.ci_low_dl,
        pooled.ci_high_dl,
        pooled.estimate_glmm,
        pooled.ci_low_glmm,
        pooled.ci_high_glmm,
        pooled.tau2_glmm,
        pooled.k_cohorts = 1 as is_single_cohort,
        pooled.caveats,
        pooled.cohort_ids,
        pooled.study_ids,
        pooled.outcome_fact_ids,
        pooled.reports_set_aside,
        not pooled.verified_only and not pooled.include_overlapping and not pooled.randomised_only
            and coalesce(definitions.is_headline_definition, false)
            and coalesce(windows.is_headline_default, false) as is_headline
    from pooled
    left join classes using (therapy_class)
    left join definitions using (definition_id)
    left join windows using (window_id)

)

select * from final
