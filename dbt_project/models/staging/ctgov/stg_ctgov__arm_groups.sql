with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(arms_interventions_module.armGroups) as arm_group,
        generate_subscripts(arms_interventions_module.armGroups, 1) as arm_group_index
    from studies

)

select
    nct_id,
    arm_group_index,
    arm_group.label as arm_group_label,
    {{ normalise_enum('arm_group.type') }} as arm_group_type,
    arm_group.description as arm_group_description,
    -- "Biological: XYZ-cells" -> "XYZ-cells"; the prefix is the intervention type label
    list_transform(coalesce(arm_group.interventionNames, []), x -> regexp_replace(x, '^[A-Za-z ]+:\s*', '')) as intervention_names
from unnested
