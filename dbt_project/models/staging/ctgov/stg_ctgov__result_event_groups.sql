{#- Adverse-event groups with the participant totals the registry states per group: deaths,
    serious and other (non-serious, above the frequency threshold) affected / at risk, each with
    its own at-risk count. Counts are read as text and kept only when they are integers. -#}
with studies as (

    select nct_id, json_transform(results_section->'adverseEventsModule',
        '{"frequencyThreshold":"VARCHAR","timeFrame":"VARCHAR","eventGroups":[{"id":"VARCHAR","title":"VARCHAR","description":"VARCHAR","deathsNumAffected":"VARCHAR","deathsNumAtRisk":"VARCHAR","seriousNumAffected":"VARCHAR","seriousNumAtRisk":"VARCHAR","otherNumAffected":"VARCHAR","otherNumAtRisk":"VARCHAR"}]}') as ae
    from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

groups as (

    select nct_id, ae.frequencyThreshold as frequency_threshold, ae.timeFrame as time_frame,
           unnest(ae.eventGroups) as grp
    from studies

)

select
    nct_id,
    grp.id as group_id,
    grp.title as group_title,
    grp.description as group_description,
    {{ registry_count('grp.deathsNumAffected') }} as deaths_affected,
    {{ registry_count('grp.deathsNumAtRisk') }} as deaths_at_risk,
    {{ registry_count('grp.seriousNumAffected') }} as serious_affected,
    {{ registry_count('grp.seriousNumAtRisk') }} as serious_at_risk,
    {{ registry_count('grp.otherNumAffected') }} as other_affected,
    {{ registry_count('grp.otherNumAtRisk') }} as other_at_risk,
    try_cast(frequency_threshold as double) as frequency_threshold_percent,
    time_frame
from groups
