{#- The previous version's trials: status, results and the overdue flag, as published. -#}
with source as (

    select * from {{ source('raw_previous_version', 'previous_version_trials') }}

)

select
    trial_id,
    brief_title,
    therapy_class,
    overall_status,
    has_results,
    is_overdue_12_months
from source
