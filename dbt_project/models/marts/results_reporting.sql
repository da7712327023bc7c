{{ config(materialized='table') }}

{#- Completed trials and whether they have reported: months since primary completion (or
    completion when that is all we have), results posted, a linked result publication, outcome
    rows the warehouse holds, and overdue flags at 12 and 24 months (a trial whose results the
    warehouse holds in any of these forms is not overdue). Dates known only to the year count
    from January. -#}
with trials as (

    select * from {{ ref('dim_trials') }}
    where overall_status in ('COMPLETED', 'TERMINATED')

),

outcome_rows as (

    select trial_id, count(*) as outcome_rows
    from {{ ref('int_outcomes_classified') }}
    where trial_id is not null
    group by trial_id

),

trials_with_outcomes as (

    select trials.*, coalesce(outcome_rows.outcome_rows, 0) as outcome_rows
    from trials
    left join outcome_rows using (trial_id)

),

final as (

    select
        trial_id,
        brief_title,
        therapy_class,
        overall_status,
        coalesce(primary_completion_date, completion_date) as reference_completion_date,
        case when primary_completion_date is not null then 'primary_completion'
             when completion_date is not null then 'completion' end as reference_date_kind,
        coalesce(primary_completion_date_precision, completion_date_precision) as reference_date_precision,
        date_diff('month', coalesce(primary_completion_date, completion_date), current_date) as months_since_completion,
        coalesce(has_results, false) as has_results_posted,
        has_results is null as is_results_flag_unknown,
        linked_result_publication_count > 0 as has_linked_result_publication,
        outcome_rows > 0 as has_outcome_rows,
        coalesce(has_results, false) or linked_result_publication_count > 0 or outcome_rows > 0 as has_any_results,
        not (coalesce(has_results, false) or linked_result_publication_count > 0 or outcome_rows > 0)
            and date_diff('month', coalesce(primary_completion_date, completion_date), current_date) > 12 as is_overdue_12_months,
        not (coalesce(has_results, false) or linked_result_publication_count > 0 or outcome_rows > 0)
            and date_diff('month', coalesce(primary_completion_date, completion_date), current_date) > 24 as is_overdue_24_months,
        source_url
    from trials_with_outcomes

)

select * from final
