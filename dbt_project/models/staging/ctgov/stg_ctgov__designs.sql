with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

renamed as (

    select
        nct_id,
        {{ normalise_enum('study.protocolSection.designModule.studyType') }}                          as study_type,
        {{ normalise_enum('study.protocolSection.designModule.designInfo.allocation') }}              as allocation,
        {{ normalise_enum('study.protocolSection.designModule.designInfo.interventionModel') }}       as intervention_model,
        {{ normalise_enum('study.protocolSection.designModule.designInfo.primaryPurpose') }}          as primary_purpose,
        {{ normalise_enum('study.protocolSection.designModule.designInfo.maskingInfo.masking') }}     as masking,
        {{ normalise_enum('study.protocolSection.designModule.designInfo.observationalModel') }}      as observational_model,
        {{ normalise_enum('study.protocolSection.designModule.designInfo.timePerspective') }}         as time_perspective,
        study.protocolSection.designModule.enrollmentInfo.count                                       as enrollment_count,
        {{ normalise_enum('study.protocolSection.designModule.enrollmentInfo.type') }}                as enrollment_type,
        study.protocolSection.designModule.patientRegistry                                            as is_patient_registry,
        len(coalesce(study.protocolSection.designModule.phases, []))                                  as phase_count
    from studies

)

select * from renamed
