{#- Baseline groups with their participant counts; the "Total" group is flagged, not dropped. -#}
with studies as (

    select nct_id, json_transform(results_section->'baselineCharacteristicsModule',
        '{"groups":[{"id":"VARCHAR","title":"VARCHAR","description":"VARCHAR"}],"denoms":[{"units":"VARCHAR","counts":[{"groupId":"VARCHAR","value":"VARCHAR"}]}]}') as baseline
    from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

groups as (

    select nct_id, baseline.denoms as denoms, unnest(baseline.groups) as grp
    from studies

)

select
    nct_id,
    grp.id as group_id,
    grp.title as group_title,
    grp.description as group_description,
    lower(trim(grp.title)) = 'total' as is_total_group,
    try_cast(list_filter(coalesce(denoms[1].counts, []), c -> c.groupId = grp.id)[1].value as integer) as participant_count
from groups
