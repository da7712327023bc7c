{{ config(materialized='table') }}

{#- Harms at the harm-category level, per source x study x arm/group (see int_harm_facts):
    'not_reported' is never a zero. -#}
with harms as (

    select * from {{ ref('int_harm_facts') }}

),

final as (

    select
        adverse_event_fact_id, source, study_id, trial_id, publication_id, arm, group_id,
        harm_category, reporting_status, event_category,
        -- sums upstream: HUGEINT in DuckDB, DOUBLE in Parquet; a count stays BIGINT
        cast(events_count as bigint) as events_count, cast(affected_count as bigint) as affected_count,
        at_risk_count, terms, verification_status, source_url, source_record_id,
        is_count_derived, therapy_class, cohort_id, is_control_arm
    from harms

)

select * from final
