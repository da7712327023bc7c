{#- Rows of every accepted sheet version (one copy per sheet content), for comparing versions. -#}
with source as (

    select * from {{ source('raw_outcomes', 'outcome_sheet_rows') }}

)

select
    sheet_file,
    sheet_sha256,
    source_row,
    study_id,
    arm,
    outcome,
    timepoint_as_reported,
    measure,
    value_as_reported,
    loaded_at
from source
