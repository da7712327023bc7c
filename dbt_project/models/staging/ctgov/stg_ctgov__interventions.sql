with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(arms_interventions_module.interventions) as intervention,
        generate_subscripts(arms_interventions_module.interventions, 1) as intervention_index
    from studies

),

renamed as (

    select
        nct_id,
        intervention_index,
        {{ normalise_enum('intervention.type') }} as intervention_type,
        trim(intervention.name) as intervention_name,
        intervention.description as intervention_description,
        coalesce(intervention.otherNames, []) as other_names,
        coalesce(intervention.armGroupLabels, []) as arm_group_labels
    from unnested

)

select * from renamed
