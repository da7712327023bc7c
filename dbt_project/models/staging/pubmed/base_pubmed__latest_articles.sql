{#- Newest landed version of each publication; every pubmed staging model reads this. -#}
with source as (

    select * from {{ source('raw_publications', 'pubmed_articles') }}

)

select *
from source
qualify row_number() over (
    partition by publication_key
    order by fetched_at desc, source_file desc, record_index desc
) = 1
