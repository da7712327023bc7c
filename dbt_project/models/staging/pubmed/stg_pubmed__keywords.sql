with articles as (

    select * from {{ ref('base_pubmed__latest_articles') }}

),

unnested as (

    select
        publication_key as publication_id,
        unnest(from_json(keywords, '["VARCHAR"]')) as keyword
    from articles

)

select distinct publication_id, trim(keyword) as keyword
from unnested
where nullif(trim(keyword), '') is not null
