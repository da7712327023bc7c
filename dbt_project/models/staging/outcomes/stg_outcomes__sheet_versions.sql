{#- Every version of every curated sheet the pipeline has seen: accepted, rejected, withdrawn. -#}
with source as (

    select * from {{ source('raw_outcomes', 'outcome_sheet_versions') }}

)

select
    sheet_file,
    sheet_sha256,
    run_id,
    status as version_status,
    loaded_at,
    row_count,
    error_count,
    problems
from source
