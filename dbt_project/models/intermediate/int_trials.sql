{#- One row per registered trial from every registry: ClinicalTrials.gov records, ICTRP
    records not merged into one (see int_trial_id_merges), and EU CTIS trials no other record
    names; each normalised from its own staging models, classified by int_trial_classification.
    dim_trials adds the publication links. -#}
with studies as (

    select * from {{ ref('stg_ctgov__studies') }}

),

designs as (

    select * from {{ ref('stg_ctgov__designs') }}

),

classification as (

    select * from {{ ref('int_trial_classification') }}

),

phases as (

    select
        nct_id,
        string_agg(phase, '/' order by phase_index) as phase,
        max(case phase when 'PHASE4' then 5 when 'PHASE3' then 4 when 'PHASE2' then 3
                       when 'PHASE1' then 2 when 'EARLY_PHASE1' then 1 else 0 end) as phase_rank
    from {{ ref('stg_ctgov__phases') }}
    group by nct_id

),

sponsors as (

    select nct_id, sponsor_name as lead_sponsor_name, agency_class as sponsor_class
    from {{ ref('stg_ctgov__sponsors') }}
    where sponsor_role = 'lead_sponsor'

),

countries as (

    select nct_id, list(country order by country) as countries, count(*) as country_count
    from {{ ref('stg_ctgov__countries') }}
    group by nct_id

),

merges as (

    select * from {{ ref('int_trial_id_merges') }} where is_merged

),

merged_ids as (

    select canonical_trial_id, list(distinct merged_id order by merged_id) as merged_ids
    from merges group by canonical_trial_id

),

ictrp as (

    select * from {{ ref('stg_ictrp__trials') }}
    where registry <> 'ClinicalTrials.gov'
      and trial_id not in (select merged_id from merges)

),

registry_trials as (

    select
        studies.nct_id as trial_id,
        studies.nct_id,
        'ClinicalTrials.gov' as registry,
        list_concat([studies.nct_id], coalesce(merged_ids.merged_ids, [])) as registry_ids,
        studies.brief_title,
        studies.official_title,
        {{ trial_classification_columns('classification') }},
        designs.study_type,
        phases.phase,
        case phases.phase_rank when 5 then 'PHASE4' when 4 then 'PHASE3' when 3 then 'PHASE2'
             when 2 then 'PHASE1' when 1 then 'EARLY_PHASE1' when 0 then 'NA' end as highest_phase,
        studies.overall_status,
        studies.why_stopped,
        studies.start_date,
        studies.start_date_precision,
        studies.primary_completion_date,
        studies.primary_completion_date_precision,
        studies.primary_completion_date_type,
        studies.completion_date,
        studies.completion_date_precision,
        designs.enrollment_count,
        designs.enrollment_type,
        sponsors.lead_sponsor_name,
        sponsors.sponsor_class,
        coalesce(countries.countries, []) as countries,
        coalesce(countries.country_count, 0) as country_count,
        studies.has_results,
        studies.results_first_post_date,
        studies.last_update_post_date,
        studies.source_url,
        studies.retrieved_at
    from studies
    left join designs using (nct_id)
    left join classification on classification.trial_id = studies.nct_id
    left join phases using (nct_id)
    left join sponsors using (nct_id)
    left join countries using (nct_id)
    left join merged_ids on merged_ids.canonical_trial_id = studies.nct_id

),

other_registry_trials as (

    select
        ictrp.trial_id,
        cast(null as varchar) as nct_id,
        ictrp.registry,
        list_distinct(list_concat([ictrp.trial_id], list_filter(ictrp.secondary_ids, x -> x <> ictrp.trial_id))) as registry_ids,
        ictrp.title as brief_title,
        ictrp.scientific_title as official_title,
        {{ trial_classification_columns('classification') }},
        ictrp.study_type,
        ictrp.phase,
        case when ictrp.phase like '%PHASE4%' then 'PHASE4' when ictrp.phase like '%PHASE3%' then 'PHASE3'
             when ictrp.phase like '%PHASE2%' then 'PHASE2' when ictrp.phase like '%PHASE1%' and ictrp.phase not like '%EARLY%' then 'PHASE1'
             when ictrp.phase like '%EARLY_PHASE1%' then 'EARLY_PHASE1' when ictrp.phase = 'NA' then 'NA' end as highest_phase,
        case lower(ictrp.recruitment_status)
            when 'recruiting' then 'RECRUITING' when 'completed' then 'COMPLETED'
            when 'not yet recruiting' then 'NOT_YET_RECRUITING' end as overall_status,
        cast(null as varchar) as why_stopped,
        ictrp.enrollment_start_date as start_date,
        case when ictrp.enrollment_start_date is not null then 'day' end as start_date_precision,
        cast(null as date) as primary_completion_date,
        cast(null as varchar) as primary_completion_date_precision,
        cast(null as varchar) as primary_completion_date_type,
        cast(null as date) as completion_date,
        cast(null as varchar) as completion_date_precision,
        cast(ictrp.target_size as bigint) as enrollment_count,
        cast(null as varchar) as enrollment_type,
        ictrp.primary_sponsor as lead_sponsor_name,
        cast(null as varchar) as sponsor_class,
        ictrp.countries,
        len(ictrp.countries) as country_count,
        cast(null as boolean) as has_results,
        cast(null as date) as results_first_post_date,
        ictrp.registration_date as last_update_post_date,
        ictrp.web_address as source_url,
        ictrp.retrieved_at
    from ictrp
    left join classification on classification.trial_id = ictrp.trial_id

),

declared_elsewhere as (

    -- an EU CT number that a ClinicalTrials.gov or ICTRP record names is that record's trial
    select distinct declared_id from {{ ref('int_trial_registry_ids') }}
    where declared_registry = 'EU CT'

),

ctis as (

    select * from {{ ref('stg_ctis__trials') }}
    where ct_number not in (select declared_id from declared_elsewhere)

),

ctis_trials as (

    select
        ctis.ct_number as trial_id,
        cast(null as varchar) as nct_id,
        'EU CT' as registry,
        [ctis.ct_number] as registry_ids,
        coalesce(ctis.short_title, ctis.title) as brief_title,
        ctis.title as official_title,
        {{ trial_classification_columns('classification') }},
        'INTERVENTIONAL' as study_type,  -- CTIS registers clinical trials of medicinal products
        ctis.phase_text as phase,
        case when regexp_matches(upper(ctis.phase_text), 'PHASE\s*(IV|4)\b') then 'PHASE4'
             when regexp_matches(upper(ctis.phase_text), 'PHASE\s*(III|3)\b') then 'PHASE3'
             when regexp_matches(upper(ctis.phase_text), 'PHASE\s*(II|2)\b') then 'PHASE2'
             when regexp_matches(upper(ctis.phase_text), 'PHASE\s*(I|1)\b') then 'PHASE1'
        end as highest_phase,
        cast(null as varchar) as overall_status,  -- CTIS statuses do not map onto the CT.gov enum
        cast(null as varchar) as why_stopped,
        ctis.start_date,
        case when ctis.start_date is not null then 'day' end as start_date_precision,
        cast(null as date) as primary_completion_date,
        cast(null as varchar) as primary_completion_date_precision,
        cast(null as varchar) as primary_completion_date_type,
        ctis.end_date as completion_date,
        case when ctis.end_date is not null then 'day' end as completion_date_precision,
        cast(ctis.enrolled_count as bigint) as enrollment_count,
        cast(null as varchar) as enrollment_type,
        ctis.sponsor_name as lead_sponsor_name,
        cast(null as varchar) as sponsor_class,
        list_filter(list_transform(string_split(coalesce(ctis.countries_text, ''), ','),
                                   x -> trim(x)), x -> x <> '') as countries,
        cast(len(list_filter(string_split(coalesce(ctis.countries_text, ''), ','),
                             x -> trim(x) <> '')) as bigint) as country_count,
        ctis.has_results,
        cast(null as date) as results_first_post_date,
        ctis.decision_date as last_update_post_date,
        ctis.source_url,
        ctis.retrieved_at
    from ctis
    left join classification on classification.trial_id = ctis.ct_number

),

final as (

    select * from registry_trials
    union all by name
    select * from other_registry_trials
    union all by name
    select * from ctis_trials

)

select * from final
