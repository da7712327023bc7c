{{ config(materialized='table') }}

with classes as (

    select * from {{ ref('therapy_classes') }}

),

trials as (

    select * from {{ ref('dim_trials') }}

),

trial_counts as (

    select
        therapy_class,
        count(*) as trials,
        count(*) filter (where highest_phase = 'PHASE3' or highest_phase = 'PHASE4') as trials_phase3_plus,
        count(*) filter (where highest_phase = 'PHASE2') as trials_phase2,
        count(*) filter (where highest_phase in ('PHASE1', 'EARLY_PHASE1')) as trials_phase1,
        count(*) filter (where highest_phase = 'NA' or highest_phase is null) as trials_phase_na_or_unknown,
        count(*) filter (where overall_status in ('RECRUITING', 'NOT_YET_RECRUITING', 'ENROLLING_BY_INVITATION', 'ACTIVE_NOT_RECRUITING')) as trials_active,
        count(*) filter (where has_results) as trials_with_results,
        max(greatest(start_date, last_update_post_date)) as latest_trial_activity
    from trials
    group by therapy_class

),

outcomes as (

    select
        therapy_class,
        count(distinct study_id) as studies_with_outcomes,
        sum(n_analyzed) filter (where is_first_row_of_arm) as patients_with_outcome_data,
        max(retrieved_at) as latest_outcome_load
    from (
        select *, row_number() over (partition by study_id, arm order by outcome_fact_id) = 1 as is_first_row_of_arm
        from {{ ref('int_outcomes_classified') }}
        where not is_overlapping_cohort
    )
    group by therapy_class

),

publications as (

    select therapy_class, count(distinct publication_id) as publications, max(publication_year) as latest_publication_year
    from {{ ref('int_publications_classified') }}
    group by therapy_class

),

final as (

    select
        classes.therapy_class,
        classes.label,
        coalesce(trial_counts.trials, 0) as trials,
        coalesce(trial_counts.trials_phase3_plus, 0) as trials_phase3_plus,
        coalesce(trial_counts.trials_phase2, 0) as trials_phase2,
        coalesce(trial_counts.trials_phase1, 0) as trials_phase1,
        coalesce(trial_counts.trials_phase_na_or_unknown, 0) as trials_phase_na_or_unknown,
        coalesce(trial_counts.trials_active, 0) as trials_active,
        coalesce(trial_counts.trials_with_results, 0) as trials_with_results,
        coalesce(publications.publications, 0) as publications,
        coalesce(outcomes.studies_with_outcomes, 0) as studies_with_outcomes,
        coalesce(outcomes.patients_with_outcome_data, 0) as patients_with_outcome_data,
        trial_counts.latest_trial_activity,
        publications.latest_publication_year
    from classes
    left join trial_counts using (therapy_class)
    left join outcomes using (therapy_class)
    left join publications using (therapy_class)

)

select * from final
