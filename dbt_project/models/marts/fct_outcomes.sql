{{ config(materialized='table') }}

{#- One row per source x trial or study x arm x outcome x timepoint (x class/category for
    registry values), as reported, with the cohort, definition and follow-up window the
    comparison uses. -#}
with classified as (

    select * from {{ ref('int_outcomes_classified') }}

),

final as (

    select
        outcome_fact_id, source, study_id, trial_id, publication_id, pmid, doi, arm, group_id,
        outcome, outcome_title, timepoint_months, timepoint_text, measure, param_type, value,
        value_text, unit, unit_as_reported, dispersion_type, dispersion_value, ci_low, ci_high,
        range_low, range_high,
        n_events, n_analyzed, n_arm, verification_status, diabetes_type,
        therapy_class_as_reported, citation_quality, source_record_id, source_location,
        source_url, other_source_urls, retrieved_at, value_normalised, unit_normalised,
        cohort_id, therapy_class, definition_id, definition_source, window_id
    from classified

)

select * from final
