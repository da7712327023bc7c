{{ config(materialized='table') }}

{#- What moved since the previously published version: comparison rows that are new, removed,
    or whose estimate, CI, k or certainty moved (before -> after, with the outcome facts added
    or removed that moved them), and trials that are new, changed status, posted results or
    became overdue. The previous version's rows were copied into raw before this build replaced
    the marts (flows/digest.py). Before the first publish there is nothing to compare with and
    the table is empty; a build in which nothing moved lists nothing. -#}
with previous_version as (

    select * from {{ ref('stg_previous_version__versions') }}

),

current_rows as (

    select * from {{ ref('therapy_outcome_comparison') }}

),

previous_rows as (

    select * from {{ ref('stg_previous_version__comparisons') }}

),

current_trials as (

    select trials.trial_id, trials.brief_title, trials.therapy_class, trials.overall_status,
           trials.has_results, reporting.is_overdue_12_months
    from {{ ref('dim_trials') }} trials
    left join {{ ref('results_reporting') }} reporting using (trial_id)

),

previous_trials as (

    select * from {{ ref('stg_previous_version__trials') }}

),

paired as (

    select
        coalesce(now.comparison_id, before.comparison_id) as comparison_id,
        before.comparison_id is null as is_new,
        now.comparison_id is null as is_removed,
        coalesce(now.therapy_label, before.therapy_label) || ' · '
            || coalesce(now.outcome, before.outcome) || ' ('
            || coalesce(now.definition_label, before.definition_label, '') || ', '
            || coalesce(now.window_label, before.window_label, '') || ', '
            || coalesce(now.diabetes_type, before.diabetes_type) || ')' as label,
        coalesce(now.is_headline, before.is_headline) as is_headline,
        before.estimate as estimate_before, now.estimate as estimate_after,
        before.ci_low as ci_low_before, now.ci_low as ci_low_after,
        before.ci_high as ci_high_before, now.ci_high as ci_high_after,
        before.k_cohorts as k_before, now.k_cohorts as k_after,
        before.certainty as certainty_before, now.certainty as certainty_after,
        coalesce(list_sort(list_filter(now.outcome_fact_ids,
                 f -> not list_contains(coalesce(before.outcome_fact_ids, []), f))), [])
            as fact_ids_added,
        coalesce(list_sort(list_filter(before.outcome_fact_ids,
                 f -> not list_contains(coalesce(now.outcome_fact_ids, []), f))), [])
            as fact_ids_removed
    from current_rows now
    full outer join previous_rows before using (comparison_id)

),

comparison_changes as (

    select
        case when is_new then 'comparison_new' when is_removed then 'comparison_removed'
             else 'comparison_moved' end as change_type,
        'comparison' as entity_type,
        comparison_id as entity_id,
        label,
        is_headline,
        case when is_new then null else
            printf('%.3f (95 %% CI %.3f-%.3f), k = %d', estimate_before, ci_low_before,
                   ci_high_before, k_before)
            || coalesce(', certainty ' || certainty_before, '') end as before,
        case when is_removed then null else
            printf('%.3f (95 %% CI %.3f-%.3f), k = %d', estimate_after, ci_low_after,
                   ci_high_after, k_after)
            || coalesce(', certainty ' || certainty_after, '') end as after,
        estimate_before, estimate_after, ci_low_before, ci_low_after, ci_high_before,
        ci_high_after, k_before, k_after, certainty_before, certainty_after,
        fact_ids_added, fact_ids_removed
    from paired
    where is_new or is_removed
       -- 1e-9: the same data give the same numbers; a recomputation's rounding is no move
       or round(estimate_before, 9) is distinct from round(estimate_after, 9)
       or round(ci_low_before, 9) is distinct from round(ci_low_after, 9)
       or round(ci_high_before, 9) is distinct from round(ci_high_after, 9)
       or k_before is distinct from k_after
       -- a version published before the rating existed has no certainty: not a move
       or (certainty_before is not null and certainty_before is distinct from certainty_after)

),

trial_pairs as (

    select
        coalesce(now.trial_id, before.trial_id) as trial_id,
        coalesce(now.brief_title, before.brief_title) as brief_title,
        before.trial_id is null as is_new,
        now.trial_id is null as is_gone,
        before.overall_status as status_before, now.overall_status as status_after,
        coalesce(before.has_results, false) as had_results,
        coalesce(now.has_results, false) as has_results,
        coalesce(before.is_overdue_12_months, false) as was_overdue,
        coalesce(now.is_overdue_12_months, false) as is_overdue
    from current_trials now
    full outer join previous_trials before using (trial_id)

),

trial_changes as (

    select 'trial_new' as change_type, trial_id, brief_title, null as before,
           coalesce(status_after, 'status unknown') as after
    from trial_pairs where is_new
    union all
    select 'trial_status_changed', trial_id, brief_title, coalesce(status_before, '(none)'),
           coalesce(status_after, '(none)')
    from trial_pairs
    where not is_new and not is_gone and status_before is distinct from status_after
    union all
    select 'trial_results_posted', trial_id, brief_title, 'no results posted', 'results posted'
    from trial_pairs where not is_new and not is_gone and not had_results and has_results
    union all
    select 'trial_became_overdue', trial_id, brief_title, 'not overdue',
           'overdue: no results 12 months after completion'
    from trial_pairs where not is_gone and not was_overdue and is_overdue

),

unioned as (

    select
        change_type, entity_type, entity_id, label, is_headline, before, after,
        estimate_before, estimate_after, ci_low_before, ci_low_after, ci_high_before,
        ci_high_after, k_before, k_after, certainty_before, certainty_after, fact_ids_added,
        fact_ids_removed
    from comparison_changes
    union all
    select
        change_type, 'trial', trial_id, brief_title, cast(null as boolean), before, after,
        null, null, null, null, null, null, null, null, null, null,
        cast([] as varchar[]), cast([] as varchar[])
    from trial_changes

),

final as (

    -- nothing is compared before the first publish
    select
        unioned.change_type || ':' || unioned.entity_id as change_id,
        unioned.change_type,
        unioned.entity_type,
        unioned.entity_id,
        unioned.label,
        unioned.is_headline,
        unioned.before,
        unioned.after,
        cast(unioned.estimate_before as double) as estimate_before,
        cast(unioned.estimate_after as double) as estimate_after,
        cast(unioned.ci_low_before as double) as ci_low_before,
        cast(unioned.ci_low_after as double) as ci_low_after,
        cast(unioned.ci_high_before as double) as ci_high_before,
        cast(unioned.ci_high_after as double) as ci_high_after,
        cast(unioned.k_before as integer) as k_before,
        cast(unioned.k_after as integer) as k_after,
        cast(unioned.certainty_before as varchar) as certainty_before,
        cast(unioned.certainty_after as varchar) as certainty_after,
        unioned.fact_ids_added,
        unioned.fact_ids_removed,
        previous_version.previous_version_id
    from unioned
    cross join previous_version

)

select * from final
