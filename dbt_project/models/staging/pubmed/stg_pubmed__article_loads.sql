{#- When each PubMed record was fetched, one row per landed version (for "new since last run"). -#}
with source as (

    select * from {{ source('raw_publications', 'pubmed_articles') }}

)

select
    publication_key,
    fetched_at
from source
