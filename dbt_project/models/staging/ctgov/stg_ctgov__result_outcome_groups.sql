{#- Outcome-measure groups (OG ids are scoped to their measure) with participants analysed. -#}
with studies as (

    select nct_id, results_section from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

measures as (

    select
        nct_id,
        unnest(json_transform(results_section->'outcomeMeasuresModule'->'outcomeMeasures',
            '[{"groups":[{"id":"VARCHAR","title":"VARCHAR","description":"VARCHAR"}],"denoms":[{"units":"VARCHAR","counts":[{"groupId":"VARCHAR","value":"VARCHAR"}]}]}]')) as measure,
        generate_subscripts(json_transform(results_section->'outcomeMeasuresModule'->'outcomeMeasures', '["JSON"]'), 1) as outcome_measure_index
    from studies

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
