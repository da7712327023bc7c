{#- ICTRP records, newest per TrialID. Dates follow the registry's own format (ISO, YYYYMMDD,
    dd/mm/yyyy, CTRI dd-mm-yyyy, "21 September 2026"); multi-value fields are ;-joined; the
    export's own misspelling Date_enrollement is read as the enrollment (start) date. EUCTR ids
    drop their member-state suffix. -#}
with source as (

    select * from {{ source('raw_registries', 'ictrp_trials') }}

),

newest as (

    select * from source
    qualify row_number() over (partition by record_id order by fetched_at desc, source_file desc, source_line desc) = 1

),

fields as (

    select
        record_id,
        source_register,
        payload->>'Public_title' as public_title,
        payload->>'Scientific_title' as scientific_title,
        payload->>'Primary_sponsor' as primary_sponsor,
        payload->>'Date_registration' as date_registration_text,
        payload->>'Date_enrollement' as date_enrollment_text,
        payload->>'Recruitment_Status' as recruitment_status,
        payload->>'Target_size' as target_size_text,
        payload->>'Study_type' as study_type_text,
        payload->>'Phase' as phase_text,
        payload->>'Countries' as countries_text,
        payload->>'Condition' as conditions_text,
        payload->>'Intervention' as interventions_text,
        payload->>'Secondary_ID' as secondary_ids_text,
        payload->>'other_records' as other_records_text,
        payload->>'web_address' as web_address,
        fetched_at,
        run_id,
        source_file,
        source_line
    from newest

),

renamed as (

    select
        case when regexp_full_match(record_id, 'EUCTR[0-9]{4}-[0-9]{6}-[0-9]{2}(-[A-Z]{2,3})?')
             then regexp_extract(record_id, '[0-9]{4}-[0-9]{6}-[0-9]{2}') else record_id end as trial_id,
        record_id as ictrp_trial_id,
        case
            when source_register ilike 'EU Clinical Trials Register%' then 'EudraCT'
            when source_register ilike 'Clinical Trials Information System%' then 'EU CT'
            when source_register = 'ClinicalTrials.gov' then 'ClinicalTrials.gov'
            else source_register
        end as registry,
        nullif(coalesce(public_title, scientific_title), '') as title,
        scientific_title,
        primary_sponsor,
        {{ ictrp_date('date_registration_text') }} as registration_date,
        {{ ictrp_date('date_enrollment_text') }} as enrollment_start_date,
        recruitment_status,
        try_cast(target_size_text as integer) as target_size,
        target_size_text,
        case when study_type_text ilike 'interventional%' then 'INTERVENTIONAL'
             when study_type_text ilike 'observational%' then 'OBSERVATIONAL' end as study_type,
        case
            when phase_text is null or phase_text in ('N/A', 'Not Applicable', 'Not applicable') then
                case when phase_text is null then null else 'NA' end
            else array_to_string(list_transform(string_split(phase_text, '/'), p ->
                case
                    when lower(trim(p)) like '%early%' then 'EARLY_PHASE1'
                    when regexp_matches(lower(trim(p)), '(phase )?(1|i)$') then 'PHASE1'
                    when regexp_matches(lower(trim(p)), '(phase )?(2|ii)$') then 'PHASE2'
                    when regexp_matches(lower(trim(p)), '(phase )?(3|iii)$') then 'PHASE3'
                    when regexp_matches(lower(trim(p)), '(phase )?(4|iv)$') then 'PHASE4'
                    else upper(trim(p)) end), '/')
        end as phase,
        phase_text,
        list_filter(list_transform(string_split(coalesce(countries_text, ''), ';'), x -> trim(x)), x -> x <> '') as countries,
        list_filter(list_transform(string_split(coalesce(conditions_text, ''), ';'), x -> trim(x)), x -> x <> '') as conditions,
        list_filter(list_transform(string_split(coalesce(interventions_text, ''), ';'), x -> trim(x)), x -> x <> '') as interventions,
        list_filter(list_transform(string_split(concat_ws(';', secondary_ids_text, other_records_text), ';'), x -> trim(x)), x -> x <> '') as secondary_ids,
        web_address,
        'who.int/ictrp' as source,
        record_id as source_record_id,
        fetched_at as retrieved_at,
        run_id,
        source_file,
        source_line
    from fields

)

select * from renamed
