with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

renamed as (

    select
        -- ids
        nct_id,
        study.protocolSection.identificationModule.orgStudyIdInfo.id          as org_study_id,

        -- descriptive
        study.protocolSection.identificationModule.briefTitle                 as brief_title,
        study.protocolSection.identificationModule.officialTitle              as official_title,
        study.protocolSection.identificationModule.acronym                    as acronym,
        study.protocolSection.identificationModule.organization.fullName      as organization_name,
        {{ normalise_enum('study.protocolSection.identificationModule.organization.class') }} as organization_class,
        study.protocolSection.descriptionModule.briefSummary                  as brief_summary,

        -- status
        {{ normalise_enum('study.protocolSection.statusModule.overallStatus') }}   as overall_status,
        {{ normalise_enum('study.protocolSection.statusModule.lastKnownStatus') }} as last_known_status,
        study.protocolSection.statusModule.whyStopped                         as why_stopped,
        study.hasResults                                                      as has_results,

        -- dates: normalised to the first day of the period, with precision and type
        {{ partial_date('study.protocolSection.statusModule.startDateStruct.date') }}                  as start_date,
        {{ partial_date_precision('study.protocolSection.statusModule.startDateStruct.date') }}        as start_date_precision,
        {{ normalise_enum('study.protocolSection.statusModule.startDateStruct.type') }}                as start_date_type,
        {{ partial_date('study.protocolSection.statusModule.primaryCompletionDateStruct.date') }}      as primary_completion_date,
        {{ partial_date_precision('study.protocolSection.statusModule.primaryCompletionDateStruct.date') }} as primary_completion_date_precision,
        {{ normalise_enum('study.protocolSection.statusModule.primaryCompletionDateStruct.type') }}    as primary_completion_date_type,
        {{ partial_date('study.protocolSection.statusModule.completionDateStruct.date') }}             as completion_date,
        {{ partial_date_precision('study.protocolSection.statusModule.completionDateStruct.date') }}   as completion_date_precision,
        {{ normalise_enum('study.protocolSection.statusModule.completionDateStruct.type') }}           as completion_date_type,
        {{ partial_date('study.protocolSection.statusModule.studyFirstPostDateStruct.date') }}         as study_first_post_date,
        {{ partial_date('study.protocolSection.statusModule.resultsFirstPostDateStruct.date') }}       as results_first_post_date,
        {{ partial_date('study.protocolSection.statusModule.lastUpdatePostDateStruct.date') }}         as last_update_post_date,
        {{ partial_date('study.protocolSection.statusModule.statusVerifiedDate') }}                    as status_verified_date,
        {{ partial_date_precision('study.protocolSection.statusModule.statusVerifiedDate') }}          as status_verified_date_precision,
        try_cast(study.derivedSection.miscInfoModule.versionHolder as date)   as version_holder_date,

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
