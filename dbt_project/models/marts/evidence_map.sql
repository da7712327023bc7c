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

outcome_arms as (

    select therapy_class, cohort_id, study_id, arm, max(n_analyzed) as arm_participants,
           max(retrieved_at) as latest_outcome_load
    from {{ ref('int_outcomes_classified') }}
    where not is_set_aside_overlap and not is_control_arm
    group by all

),

outcome_cohorts as (

    -- per cohort, its largest report (arms summed): reports of one cohort are not added up
    select therapy_class, cohort_id, max(study_participants) as cohort_participants
    from (
        select therapy_class, cohort_id, study_id, sum(arm_participants) as study_participants
        from outcome_arms
        group by all
    )
    group by all

),

outcomes as (

    select
        outcome_arms.therapy_class,
        count(distinct outcome_arms.study_id) as studies_with_outcomes,
        -- sums of integers are HUGEINT in DuckDB (DOUBLE in Parquet): counts stay BIGINT
        cast((select sum(cohort_participants) from outcome_cohorts c
              where c.therapy_class = outcome_arms.therapy_class) as bigint) as patients_with_outcome_data,
        max(outcome_arms.latest_outcome_load) as latest_outcome_load
    from outcome_arms
    group by outcome_arms.therapy_class

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
