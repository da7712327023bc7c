{{ config(materialized='table') }}

{#- Completed trials and whether they have reported: months since primary completion (or
    completion when that is all we have), results posted, a linked result publication, and
    overdue flags at 12 and 24 months. Dates known only to the year count from January. -#}
with trials as (

    select * from {{ ref('dim_trials') }}
    where overall_status in ('COMPLETED', 'TERMINATED')

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
        coalesce(has_results, false) or linked_result_publication_count > 0 as has_any_results,
        not (coalesce(has_results, false) or linked_result_publication_count > 0)
            and date_diff('month', coalesce(primary_completion_date, completion_date), current_date) > 12 as is_overdue_12_months,
        not (coalesce(has_results, false) or linked_result_publication_count > 0)
            and date_diff('month', coalesce(primary_completion_date, completion_date), current_date) > 24 as is_overdue_24_months,
        source_url
    from trials

)

select * from final
