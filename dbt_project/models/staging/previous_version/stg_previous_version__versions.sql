{#- The previously published version this build is compared with (no row before the first). -#}
with source as (

    select * from {{ source('raw_previous_version', 'previous_version') }}

)

select
    version_id as previous_version_id,
    published_at as previous_published_at,
    copied_at
from source
