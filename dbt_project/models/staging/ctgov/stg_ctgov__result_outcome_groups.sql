{#- Outcome-measure groups (OG ids are scoped to their measure) with what each group analysed:
    participants (the denominator whose units are "Participants") and, for measures counted in
    other units (eyes, lesions: typeUnitsAnalyzed), the units analysed. A count of participants
    is a proportion only over its own group's participants analysed. -#}
with measures as (

    select
        nct_id,
        outcome_measure_index,
        json_transform(measure, '{"typeUnitsAnalyzed":"VARCHAR","groups":[{"id":"VARCHAR","title":"VARCHAR","description":"VARCHAR"}],"denoms":[{"units":"VARCHAR","counts":[{"groupId":"VARCHAR","value":"VARCHAR"}]}]}') as measure
    from {{ ref('base_ctgov__outcome_measures') }}

),

groups as (

    select nct_id, outcome_measure_index, unnest(measure.groups) as grp,
           coalesce(measure.denoms, []) as denoms, measure.typeUnitsAnalyzed as units_analyzed
    from measures

),

denominators as (

    select
        *,
        list_filter(denoms, d -> lower(trim(d.units)) = 'participants')[1] as participants_denom,
        list_filter(denoms, d -> lower(trim(d.units)) = lower(trim(units_analyzed)))[1] as units_denom
    from groups

)

select
    nct_id,
    outcome_measure_index,
    grp.id as group_id,
    grp.title as group_title,
    grp.description as group_description,
    {{ registry_count("list_filter(coalesce(coalesce(participants_denom, denoms[1]).counts, []), c -> c.groupId = grp.id)[1].value") }} as participants_analyzed,
    coalesce(participants_denom, denoms[1]).units as denominator_units,
    case when units_denom is not null and units_denom is distinct from participants_denom then
        {{ registry_count("list_filter(coalesce(units_denom.counts, []), c -> c.groupId = grp.id)[1].value") }}
    end as units_analyzed_count,
    units_analyzed
from denominators
