{{ config(materialized='table') }}

{#-
  The one place the study JSON is parsed: newest version per nct_id, transformed once into typed
  structs (json_transform), one column per API module, so each entity model reads only the
  modules it needs instead of re-parsing ~17 KB of JSON per study. Materialised as a table.
-#}

with source as (

    select * from {{ source('raw', 'ctgov_studies') }}

),

newest_version as (

    select *
    from source
    qualify row_number() over (
        partition by nct_id
        order by last_update_post_date desc nulls last, fetched_at desc, source_file desc, source_line desc
    ) = 1

),

parsed as (

    select
        nct_id,
        last_update_post_date,
        run_id,
        fetched_at,
        source_file,
        source_line,
        payload_md5,
        json_transform(payload, '{{ ctgov_study_structure() }}') as study,
        -- results are parsed by the result models; the LIKE guard skips the ~85 % without
        case when payload::varchar like '%"resultsSection"%' then payload->'resultsSection' end as results_section
    from newest_version

),

modules as (

    select
        nct_id,
        last_update_post_date,
        run_id,
        fetched_at,
        source_file,
        source_line,
        payload_md5,
        study.protocolSection.identificationModule       as identification_module,
        study.protocolSection.statusModule               as status_module,
        study.protocolSection.sponsorCollaboratorsModule as sponsor_collaborators_module,
        study.protocolSection.descriptionModule          as description_module,
        study.protocolSection.conditionsModule           as conditions_module,
        study.protocolSection.designModule               as design_module,
        study.protocolSection.armsInterventionsModule    as arms_interventions_module,
        study.protocolSection.eligibilityModule          as eligibility_module,
        study.protocolSection.contactsLocationsModule    as contacts_locations_module,
        study.protocolSection.referencesModule           as references_module,
        study.derivedSection.miscInfoModule              as misc_info_module,
        study.derivedSection.conditionBrowseModule       as condition_browse_module,
        study.derivedSection.interventionBrowseModule    as intervention_browse_module,
        study.hasResults                                 as has_results,
        results_section
    from parsed

)

select * from modules
