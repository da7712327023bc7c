{#- One row per event term x group, serious and other, at the registry's grain: a term's counts
    are about that term only (participants are not additive across terms). numAtRisk may be
    missing: it stays null (the group total in stg_ctgov__result_event_groups is the fallback
    downstream). Counts are read as text and kept only when they are integers. -#}
with studies as (

    select nct_id, json_transform(results_section->'adverseEventsModule',
        '{"timeFrame":"VARCHAR","seriousEvents":[{"term":"VARCHAR","organSystem":"VARCHAR","sourceVocabulary":"VARCHAR","assessmentType":"VARCHAR","notes":"VARCHAR","stats":[{"groupId":"VARCHAR","numEvents":"VARCHAR","numAffected":"VARCHAR","numAtRisk":"VARCHAR"}]}],"otherEvents":[{"term":"VARCHAR","organSystem":"VARCHAR","sourceVocabulary":"VARCHAR","assessmentType":"VARCHAR","notes":"VARCHAR","stats":[{"groupId":"VARCHAR","numEvents":"VARCHAR","numAffected":"VARCHAR","numAtRisk":"VARCHAR"}]}]}') as ae
    from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

serious as (

    select nct_id, 'serious' as event_category, unnest(ae.seriousEvents) as event,
           generate_subscripts(ae.seriousEvents, 1) as event_index
    from studies

),

other as (

    select nct_id, 'other' as event_category, unnest(ae.otherEvents) as event,
           generate_subscripts(ae.otherEvents, 1) as event_index
    from studies

),

events as (

    select * from serious
    union all
    select * from other

),

stats as (

    select nct_id, event_category, event_index, event, unnest(event.stats) as stat,
           generate_subscripts(event.stats, 1) as stat_index
    from events

)

select
    nct_id,
    event_category,
    event_index,
    stat_index,
    trim(event.term) as term,
    trim(event.organSystem) as organ_system,
    event.sourceVocabulary as source_vocabulary,
    {{ normalise_enum('event.assessmentType') }} as assessment_type,
    stat.groupId as group_id,
    {{ registry_count('stat.numEvents') }} as event_count,
    {{ registry_count('stat.numAffected') }} as affected_count,
    {{ registry_count('stat.numAtRisk') }} as at_risk_count
from stats
