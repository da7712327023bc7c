{#- Refreshes that built the warehouse, newest last. -#}
with source as (

    select * from {{ source('raw_pipeline', 'refreshes') }}

)

select
    refresh_id,
    started_at as refresh_started_at,
    mode as refresh_mode
from source
