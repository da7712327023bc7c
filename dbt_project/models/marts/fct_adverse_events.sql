{{ config(materialized='table') }}

{#- Harms at the harm-category level, per source x study x arm/group, counted at the grain the
    source gives (see int_harm_facts): group totals for any serious / any other adverse event and
    deaths; bounds (affected_low..affected_high) for a category spanning several terms, an exact
    affected_count only where the data give one; 'not_reported' is never a zero. -#}
with harms as (

    select * from {{ ref('int_harm_facts') }}

),

final as (

    select
        adverse_event_fact_id, source, study_id, trial_id, publication_id, arm, group_id,
        harm_category, reporting_status, event_category,
        -- sums upstream: HUGEINT in DuckDB, DOUBLE in Parquet; a count stays BIGINT
        cast(events_count as bigint) as events_count, cast(affected_count as bigint) as affected_count,
        cast(at_risk_count as integer) as at_risk_count, terms, verification_status, source_url,
        source_record_id, is_count_derived, therapy_class, cohort_id, is_control_arm,
        cast(affected_low as bigint) as affected_low, cast(affected_high as bigint) as affected_high,
        count_basis, coalesce(affected_low <> affected_high, false) as is_bounds, diabetes_type,
        retrieved_at
    from harms

)

select * from final
