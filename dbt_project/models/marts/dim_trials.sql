{{ config(materialized='table') }}

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

links as (

    select
        trial_id,
        count(distinct publication_id) as linked_publication_count,
        count(distinct publication_id) filter (where confidence = 'high') as linked_publication_high_confidence_count,
        count(distinct publication_id) filter (where list_contains(ctgov_reference_types, 'RESULT')
                                               or list_contains(link_sources, 'pubmed_databank')
                                               or list_contains(link_sources, 'curated_outcome_sheet')) as linked_result_publication_count
    from {{ ref('trial_publication_links') }}
    group by trial_id

),

final as (

    select
        studies.nct_id as trial_id,
        studies.nct_id,
        'ClinicalTrials.gov' as registry,
        [studies.nct_id] as registry_ids,
        studies.brief_title,
        studies.official_title,
        classification.therapy_class,
        classification.therapy_class_rule,
        classification.msc_source,
        classification.donor_type,
        classification.is_gene_edited,
        classification.is_encapsulated,
        classification.immunosuppression,
        classification.diabetes_type,
        classification.complications,
        classification.is_complication_trial,
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
        coalesce(links.linked_publication_count, 0) as linked_publication_count,
        coalesce(links.linked_result_publication_count, 0) as linked_result_publication_count,
        studies.last_update_post_date,
        studies.source_url,
        studies.retrieved_at
    from studies
    left join designs using (nct_id)
    left join classification on classification.trial_id = studies.nct_id
    left join phases using (nct_id)
    left join sponsors using (nct_id)
    left join countries using (nct_id)
    left join links on links.trial_id = studies.nct_id

)

select * from final
