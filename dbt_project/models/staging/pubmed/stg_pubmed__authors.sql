with articles as (

    select * from {{ ref('base_pubmed__latest_articles') }}

),

unnested as (

    select
        publication_key as publication_id,
        unnest(from_json(authors, '[{"position":"INTEGER","last_name":"VARCHAR","fore_name":"VARCHAR","initials":"VARCHAR","collective_name":"VARCHAR","orcid":"VARCHAR","affiliations":["VARCHAR"]}]')) as author
    from articles

)

select
    publication_id,
    author.position as author_position,
    author.last_name as last_name,
    author.fore_name as fore_name,
    author.initials as initials,
    author.collective_name as collective_name,
    author.collective_name is not null as is_collective,
    author.orcid as orcid,
    coalesce(author.affiliations, []) as affiliations,
    author.affiliations[1] as first_affiliation
from unnested
