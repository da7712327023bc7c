with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

renamed as (

    select
        nct_id,
        {{ normalise_enum('design_module.studyType') }}                          as study_type,
        {{ normalise_enum('design_module.designInfo.allocation') }}              as allocation,
        {{ normalise_enum('design_module.designInfo.interventionModel') }}       as intervention_model,
        {{ normalise_enum('design_module.designInfo.primaryPurpose') }}          as primary_purpose,
        {{ normalise_enum('design_module.designInfo.maskingInfo.masking') }}     as masking,
        {{ normalise_enum('design_module.designInfo.observationalModel') }}      as observational_model,
        {{ normalise_enum('design_module.designInfo.timePerspective') }}         as time_perspective,
        design_module.enrollmentInfo.count                                       as enrollment_count,
        {{ normalise_enum('design_module.enrollmentInfo.type') }}                as enrollment_type,
        design_module.patientRegistry                                            as is_patient_registry,
        len(coalesce(design_module.phases, []))                                  as phase_count
    from studies

)

select * from renamed
