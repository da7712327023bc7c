{{ config(materialized='table') }}

{#- The trial dimension: every registry's trials (int_trials) with their publication links. -#}
with trials as (

    select * from {{ ref('int_trials') }}

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
        trials.trial_id,
        trials.nct_id,
        trials.registry,
        trials.registry_ids,
        trials.brief_title,
        trials.official_title,
        trials.therapy_class,
        trials.therapy_class_rule,
        trials.therapy_class_reason,
        trials.msc_source,
        trials.donor_type,
        trials.is_gene_edited,
        trials.is_encapsulated,
        trials.immunosuppression,
        trials.diabetes_type,
        trials.complications,
        trials.is_complication_trial,
        trials.study_type,
        trials.phase,
        trials.highest_phase,
        trials.overall_status,
        trials.why_stopped,
        trials.start_date,
        trials.start_date_precision,
        trials.primary_completion_date,
        trials.primary_completion_date_precision,
        trials.primary_completion_date_type,
        trials.completion_date,
        trials.completion_date_precision,
        trials.enrollment_count,
        trials.enrollment_type,
        trials.lead_sponsor_name,
        trials.sponsor_class,
        trials.countries,
        trials.country_count,
        trials.has_results,
        trials.results_first_post_date,
        coalesce(links.linked_publication_count, 0) as linked_publication_count,
        coalesce(links.linked_result_publication_count, 0) as linked_result_publication_count,
        trials.last_update_post_date,
        trials.source_url,
        trials.retrieved_at
    from trials
    left join links using (trial_id)

)

select * from final
