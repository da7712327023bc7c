{#- Outcome-measure groups (OG ids are scoped to their measure) with participants analysed. -#}
with measures as (

    select
        nct_id,
        outcome_measure_index,
        json_transform(measure, '{"groups":[{"id":"VARCHAR","title":"VARCHAR","description":"VARCHAR"}],"denoms":[{"units":"VARCHAR","counts":[{"groupId":"VARCHAR","value":"VARCHAR"}]}]}') as measure
    from {{ ref('base_ctgov__outcome_measures') }}

),

groups as (

    select nct_id, outcome_measure_index, unnest(measure.groups) as grp, measure.denoms as denoms
    from measures

)

select
    nct_id,
    outcome_measure_index,
    grp.id as group_id,
    grp.title as group_title,
    grp.description as group_description,
    try_cast(list_filter(coalesce(denoms[1].counts, []), c -> c.groupId = grp.id)[1].value as integer) as participants_analyzed,
    denoms[1].units as denominator_units
from groups
