{{ config(materialized='table') }}

{#- Per therapy class x harm category: events / at risk from registry results and publications,
    and how many studies report the harm vs report harms but not this one. -#}
with harms as (

    select * from {{ ref('fct_adverse_events') }}

),

trials as (

    -- a registry record too thin to classify never overrides the curator's label
    select trial_id, therapy_class, msc_source from {{ ref('dim_trials') }}
    where therapy_class not in ('needs_review', 'unclassified')

),

labels as (

    select * from {{ ref('published_therapy_labels') }}

),

published as (

    select distinct study_id, therapy_class_as_reported from {{ ref('stg_outcomes__published_outcomes') }}

),

classified as (

    select
        harms.*,
        coalesce(trials.therapy_class, labels.therapy_class, 'other_stem_cell') as therapy_class
    from harms
    left join trials on trials.trial_id = harms.trial_id
    left join published on published.study_id = harms.study_id and harms.source = 'publication'
    left join labels on labels.therapy_class_as_reported = published.therapy_class_as_reported

),

final as (

    select
        therapy_class,
        harm_category,
        count(distinct study_id) filter (where reporting_status = 'reported') as studies_reporting,
        count(distinct study_id) filter (where reporting_status = 'reported_qualitative') as studies_reporting_qualitatively,
        count(distinct study_id) filter (where reporting_status = 'not_reported') as studies_not_reporting,
        sum(affected_count) filter (where reporting_status = 'reported') as participants_affected,
        sum(at_risk_count) filter (where reporting_status = 'reported') as participants_at_risk,
        sum(affected_count) filter (where reporting_status = 'reported' and source = 'registry_results') as registry_affected,
        sum(at_risk_count) filter (where reporting_status = 'reported' and source = 'registry_results') as registry_at_risk,
        sum(affected_count) filter (where reporting_status = 'reported' and source = 'publication') as publication_affected,
        sum(at_risk_count) filter (where reporting_status = 'reported' and source = 'publication') as publication_at_risk,
        list(distinct study_id order by study_id) filter (where reporting_status = 'reported') as reporting_study_ids
    from classified
    group by therapy_class, harm_category

)

select * from final
