{{ config(materialized='table') }}

{#- Harms per therapy class x diabetes type x harm category: participants affected / at risk over
    the cohorts that report the harm with a count or an explicit zero, with the exact 95 %
    interval; cohorts that report harms but not this one are counted as not reporting, never as
    zero events. count_basis says what the figure used: 'exact' counts, or 'bounds' when a cohort
    gives only bounds for a category spanning several adverse-event terms (then
    participants_affected and proportion are null, and the interval covers the bounds); see
    flows/evidence/harms.py for the rules. -#}
with rates as (

    select * from {{ ref('int_harm_rates') }}

),

classes as (

    select therapy_class, label from {{ ref('therapy_classes') }}

),

final as (

    select
        rates.therapy_class,
        classes.label as therapy_label,
        rates.diabetes_type,
        rates.harm_category,
        rates.cohorts_with_count,
        rates.cohorts_reporting_qualitatively,
        rates.cohorts_without_count,
        rates.cohorts_not_reporting,
        rates.participants_affected,
        rates.participants_at_risk,
        rates.proportion,
        rates.ci_low,
        rates.ci_high,
        rates.cohorts_with_count = 0 as is_not_reported,
        rates.includes_derived_counts,
        rates.includes_secondary_sources,
        rates.count_basis,
        rates.cohorts_with_bounds,
        rates.participants_affected_low,
        rates.participants_affected_high,
        rates.registry_affected,
        rates.registry_at_risk,
        rates.publication_affected,
        rates.publication_at_risk,
        rates.reporting_study_ids,
        rates.adverse_event_fact_ids
    from rates
    left join classes using (therapy_class)

)

select * from final
