with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

renamed as (

    select
        -- ids
        nct_id,
        identification_module.orgStudyIdInfo.id          as org_study_id,

        -- descriptive
        identification_module.briefTitle                 as brief_title,
        identification_module.officialTitle              as official_title,
        identification_module.acronym                    as acronym,
        identification_module.organization.fullName      as organization_name,
        {{ normalise_enum('identification_module.organization.class') }} as organization_class,
        description_module.briefSummary                  as brief_summary,
        description_module.detailedDescription           as detailed_description,

        -- status
        {{ normalise_enum('status_module.overallStatus') }}   as overall_status,
        {{ normalise_enum('status_module.lastKnownStatus') }} as last_known_status,
        status_module.whyStopped                         as why_stopped,
        has_results                                                      as has_results,

        -- dates: normalised to the first day of the period, with precision, type and the text as
        -- registered (a date that names no real day is NULL, its text kept)
        {{ partial_date('status_module.startDateStruct.date') }}                  as start_date,
        {{ partial_date_precision('status_module.startDateStruct.date') }}        as start_date_precision,
        {{ normalise_enum('status_module.startDateStruct.type') }}                as start_date_type,
        status_module.startDateStruct.date                                        as start_date_text,
        {{ partial_date('status_module.primaryCompletionDateStruct.date') }}      as primary_completion_date,
        {{ partial_date_precision('status_module.primaryCompletionDateStruct.date') }} as primary_completion_date_precision,
        {{ normalise_enum('status_module.primaryCompletionDateStruct.type') }}    as primary_completion_date_type,
        status_module.primaryCompletionDateStruct.date                            as primary_completion_date_text,
        {{ partial_date('status_module.completionDateStruct.date') }}             as completion_date,
        {{ partial_date_precision('status_module.completionDateStruct.date') }}   as completion_date_precision,
        {{ normalise_enum('status_module.completionDateStruct.type') }}           as completion_date_type,
        status_module.completionDateStruct.date                                   as completion_date_text,
        {{ partial_date('status_module.studyFirstPostDateStruct.date') }}         as study_first_post_date,
        {{ partial_date('status_module.resultsFirstPostDateStruct.date') }}       as results_first_post_date,
        {{ partial_date('status_module.lastUpdatePostDateStruct.date') }}         as last_update_post_date,
        {{ partial_date('status_module.statusVerifiedDate') }}                    as status_verified_date,
        {{ partial_date_precision('status_module.statusVerifiedDate') }}          as status_verified_date_precision,
        status_module.statusVerifiedDate                                          as status_verified_date_text,
        try_cast(misc_info_module.versionHolder as date)   as version_holder_date,

        -- provenance
        'clinicaltrials.gov'                                                  as source,
        nct_id                                                                as source_record_id,
        'https://clinicaltrials.gov/study/' || nct_id                         as source_url,
        fetched_at                                                            as retrieved_at,
        run_id,
        source_file,
        source_line

    from studies

)

select * from renamed
