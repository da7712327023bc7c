with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

renamed as (

    select
        nct_id,
        {{ normalise_enum('eligibility_module.sex') }} as sex,
        eligibility_module.minimumAge as minimum_age_text,
        {{ age_in_years('eligibility_module.minimumAge') }} as minimum_age_years,
        eligibility_module.maximumAge as maximum_age_text,
        {{ age_in_years('eligibility_module.maximumAge') }} as maximum_age_years,
        eligibility_module.healthyVolunteers as accepts_healthy_volunteers,
        coalesce(eligibility_module.stdAges, []) as standard_age_groups,
        eligibility_module.eligibilityCriteria as eligibility_criteria
    from studies

)

select * from renamed
