{{ config(materialized='table') }}

{#- Registry adverse-event terms at the registry's grain: one row per term x event group, serious
    and other, with the term's own counts. Participants are not additive across terms (a
    participant with two terms is in both rows): fct_adverse_events has the participant counts a
    category supports. Terms of a quarantined record are not here. -#}
with terms as (

    select * from {{ ref('int_adverse_events_classified') }}

),

final as (

    select
        'registry:' || nct_id || ':' || event_category || ':' || event_index
            || ':' || coalesce(group_id, '-') || ':' || stat_index as adverse_event_term_id,
        'registry_results' as source,
        nct_id as trial_id,
        group_id,
        group_title as arm,
        event_category,
        term,
        organ_system,
        source_vocabulary,
        assessment_type,
        harm_category,
        cast(event_count as bigint) as events_count,
        cast(affected_count as bigint) as affected_count,
        cast(coalesce(at_risk_count, group_at_risk_count) as bigint) as at_risk_count,
        at_risk_count is null as is_at_risk_from_group_total,
        time_frame,
        'https://clinicaltrials.gov/study/' || nct_id || '?tab=results' as source_url,
        nct_id || ' adverseEventsModule ' || event_category || 'Events[' || event_index
            || '] ' || coalesce(group_id, '-') as source_record_id,
        retrieved_at
    from terms

)

select * from final
