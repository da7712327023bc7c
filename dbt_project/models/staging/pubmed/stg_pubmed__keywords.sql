with articles as (

    select * from {{ source('raw_publications', 'pubmed_articles') }}
    qualify row_number() over (partition by publication_key order by fetched_at desc, source_file desc, record_index desc) = 1

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
