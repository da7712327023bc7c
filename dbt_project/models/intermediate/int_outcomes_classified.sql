{#- Published outcome facts with a therapy class: the registry classification of the linked
    trial when that trial is in the warehouse, else the curator's product label (mapped). -#}
with outcomes as (

    select * from {{ ref('fct_outcomes') }}

),

trials as (

    -- a registry record too thin to classify never overrides the curator's label
    select trial_id, therapy_class, msc_source from {{ ref('dim_trials') }}
    where therapy_class not in ('needs_review', 'unclassified')

),

labels as (

    select * from {{ ref('published_therapy_labels') }}

),

overlapping as (

    select * from {{ ref('overlapping_cohorts') }}

),

final as (

    select
        outcomes.*,
        coalesce(trials.therapy_class, labels.therapy_class, 'other_stem_cell') as therapy_class,
        case
            when trials.therapy_class is not null then trials.msc_source
            else labels.msc_source
        end as msc_source,
        case when trials.therapy_class is not null then 'registry_classification'
             when labels.therapy_class is not null then 'curator_label'
             else 'unmapped' end as therapy_class_source,
        coalesce(overlapping.excluded_by_default, false) as is_overlapping_cohort,
        -- comparator arms of controlled studies carry the study's product label but not the product
        coalesce(regexp_matches(lower(outcomes.arm),
            '{{ control_arm_pattern() }}'), false)
            as is_control_arm,
        outcomes.verification_status = 'no' as is_unverified
    from outcomes
    left join trials on trials.trial_id = outcomes.trial_id
    left join labels on labels.therapy_class_as_reported = outcomes.therapy_class_as_reported
    left join overlapping on overlapping.study_id = outcomes.study_id

)

select * from final
