{#- The previous version's comparison rows, as published. -#}
with source as (

    select * from {{ source('raw_previous_version', 'previous_version_comparisons') }}

)

select
    comparison_id,
    therapy_label,
    outcome,
    definition_label,
    window_label,
    diabetes_type,
    is_headline,
    k_cohorts,
    n_participants,
    n_events,
    estimate,
    ci_low,
    ci_high,
    certainty,
    outcome_fact_ids
from source
