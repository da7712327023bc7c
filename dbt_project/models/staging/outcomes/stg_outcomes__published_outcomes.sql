{#- Rows of the version of each sheet now in effect: the newest accepted or withdrawn version
    (a rejected sheet never replaces a good one; a withdrawn sheet, whose file was removed,
    contributes no rows). -#}
with sheet_rows as (

    select * from {{ source('raw_outcomes', 'outcome_sheet_rows') }}

),

versions as (

    select * from {{ source('raw_outcomes', 'outcome_sheet_versions') }}

),

latest_versions as (

    select sheet_file, sheet_sha256, status
    from versions
    where status in ('accepted', 'withdrawn')
    qualify row_number() over (partition by sheet_file order by loaded_at desc) = 1

),

current_versions as (

    select sheet_file, sheet_sha256
    from latest_versions
    where status = 'accepted'

),

current_rows as (

    select sheet_rows.*
    from sheet_rows
    inner join current_versions using (sheet_file, sheet_sha256)

),

renamed as (

    select
        sheet_file || ':' || source_row                        as outcome_row_id,
        study_id,
        first_author,
        year                                                   as publication_year,
        journal,
        pmid,
        lower(doi)                                             as doi,
        source_url,
        list_filter(string_split(trim(coalesce(other_source_urls, '')), ' '), url -> url <> '') as other_source_urls,
        coalesce('pmid:' || pmid, 'doi:' || lower(doi))        as publication_id,
        case when pmid is not null or doi is not null then 'persistent_id' else 'url_only' end as citation_quality,
        trial_id                                               as trial_id_as_curated,
        -- a registry id or NULL, never '' (regexp_extract gives '' when nothing matches)
        nullif(regexp_extract(trial_id, 'NCT[0-9]{8}|ChiCTR(?:-[A-Z]{2,4}-[0-9]{8}|[0-9]{10})|IRCT[0-9]{10,16}N[0-9]{1,3}'), '') as trial_id,
        design,
        randomized,
        diabetes_type,
        population_note,
        therapy_class_as_reported,
        cell_source,
        donor_type,
        route,
        dose,
        immunosuppression,
        arm,
        n_arm,
        n_arm_as_reported,
        followup_months,
        followup_as_reported,
        outcome,
        outcome_definition,
        timepoint_months,
        timepoint_as_reported,
        measure,
        value,
        value_as_reported,
        unit,
        unit_as_reported,
        n_events,
        n_total,
        ci_low,
        ci_high,
        verified                                               as verification_status,
        source                                                 as source_note,
        risk_of_bias,
        risk_of_bias_tool,
        sheet_file,
        sheet_sha256,
        source_row,
        run_id,
        loaded_at
    from current_rows

)

select * from renamed
