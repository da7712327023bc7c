with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

renamed as (

    select
        nct_id,
        {{ normalise_enum('study.protocolSection.eligibilityModule.sex') }} as sex,
        study.protocolSection.eligibilityModule.minimumAge as minimum_age_text,
        {{ age_in_years('study.protocolSection.eligibilityModule.minimumAge') }} as minimum_age_years,
        study.protocolSection.eligibilityModule.maximumAge as maximum_age_text,
        {{ age_in_years('study.protocolSection.eligibilityModule.maximumAge') }} as maximum_age_years,
        study.protocolSection.eligibilityModule.healthyVolunteers as accepts_healthy_volunteers,
        coalesce(study.protocolSection.eligibilityModule.stdAges, []) as standard_age_groups,
        study.protocolSection.eligibilityModule.eligibilityCriteria as eligibility_criteria
    from studies

)

select * from renamed
