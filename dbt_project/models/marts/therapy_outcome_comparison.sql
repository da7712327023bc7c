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

certainty as (

    -- the automatic GRADE-style rating of each row, one judgement per domain (see README)
    select * from {{ ref('int_comparison_certainty') }}

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
        pooled.cohort_events,
        pooled.cohort_participants,
        pooled.cohort_estimates,
        pooled.cohort_ci_low,
        pooled.cohort_ci_high,
        pooled.cohort_weights,
        pooled.study_ids,
        pooled.outcome_fact_ids,
        pooled.reports_set_aside,
        not pooled.verified_only and not pooled.include_overlapping and not pooled.randomised_only
            and coalesce(definitions.is_headline_definition, false)
            and coalesce(windows.is_headline_default, false) as is_headline,
        certainty.certainty,
        certainty.certainty_start,
        certainty.certainty_downgrade,
        certainty.certainty_design,
        certainty.certainty_risk_of_bias,
        certainty.certainty_risk_of_bias_reason,
        certainty.certainty_inconsistency,
        certainty.certainty_inconsistency_reason,
        certainty.certainty_imprecision,
        certainty.certainty_imprecision_reason,
        certainty.certainty_indirectness,
        certainty.certainty_indirectness_reason,
        certainty.certainty_publication_bias,
        certainty.certainty_publication_bias_reason,
        certainty.certainty_method
    from pooled
    left join classes using (therapy_class)
    left join definitions using (definition_id)
    left join windows using (window_id)
    left join certainty
        on certainty.verified_only = pooled.verified_only
       and certainty.include_overlapping = pooled.include_overlapping
       and certainty.randomised_only = pooled.randomised_only
       and certainty.therapy_class = pooled.therapy_class
       and certainty.msc_source is not distinct from pooled.msc_source
       and certainty.diabetes_type = pooled.diabetes_type
       and certainty.outcome = pooled.outcome
       and certainty.definition_id = pooled.definition_id
       and certainty.window_id = pooled.window_id

)

select * from final
