{#- Adverse-event groups with deaths, serious and other totals (integers in this module). -#}
with studies as (

    select nct_id, json_transform(results_section->'adverseEventsModule',
        '{"frequencyThreshold":"VARCHAR","timeFrame":"VARCHAR","eventGroups":[{"id":"VARCHAR","title":"VARCHAR","description":"VARCHAR","deathsNumAffected":"INTEGER","deathsNumAtRisk":"INTEGER","seriousNumAffected":"INTEGER","seriousNumAtRisk":"INTEGER","otherNumAffected":"INTEGER","otherNumAtRisk":"INTEGER"}]}') as ae
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
    grp.deathsNumAffected as deaths_affected,
    grp.deathsNumAtRisk as deaths_at_risk,
    grp.seriousNumAffected as serious_affected,
    grp.seriousNumAtRisk as serious_at_risk,
    grp.otherNumAffected as other_affected,
    grp.otherNumAtRisk as other_at_risk,
    try_cast(frequency_threshold as double) as frequency_threshold_percent,
    time_frame
from groups
