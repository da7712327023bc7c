{#- One row per publication from every publication source: PubMed records, and Europe PMC
    records that PubMed does not hold (preprints, DOI-only records, PMIDs not fetched from
    PubMed), matched by publication id and by DOI. -#}
with articles as (

    select * from {{ ref('stg_pubmed__articles') }}

),

first_authors as (

    select publication_id,
           coalesce(last_name || coalesce(' ' || initials, ''), collective_name) as first_author
    from {{ ref('stg_pubmed__authors') }}
    where author_position = 1

),

europepmc as (

    select * from {{ ref('stg_europepmc__records') }}

),

pubmed as (

    select
        articles.publication_id,
        articles.pmid,
        articles.doi,
        articles.pmcid,
        articles.title,
        first_authors.first_author,
        coalesce(articles.journal_iso_abbreviation, articles.journal_title) as journal,
        articles.publication_year,
        articles.publication_date,
        articles.publication_date_precision,
        articles.publication_types,
        articles.source,
        articles.source_url,
        articles.retrieved_at
    from articles
    left join first_authors using (publication_id)

),

europepmc_only as (

    select
        publication_id,
        pmid,
        doi,
        pmcid,
        title,
        first_author,
        journal_title as journal,
        publication_year,
        cast(null as date) as publication_date,
        case when publication_year is not null then 'year' end as publication_date_precision,
        cast([] as varchar[]) as publication_types,
        source,
        source_url,
        retrieved_at
    from europepmc
    where publication_id not in (select publication_id from pubmed)
      and (doi is null or doi not in (select doi from pubmed where doi is not null))
    qualify row_number() over (partition by publication_id order by retrieved_at desc, europepmc_id) = 1

)

select * from pubmed
union all by name
select * from europepmc_only
