{{ config(materialized='table') }}

with articles as (

    select * from {{ ref('int_publications') }}

),

classified as (

    select * from {{ ref('int_publications_classified') }}

),

links as (

    select publication_id, list(distinct trial_id order by trial_id) as linked_trial_ids,
           count(distinct trial_id) as linked_trial_count
    from {{ ref('trial_publication_links') }}
    group by publication_id

),

outcome_rows as (

    select publication_id, count(*) as outcome_rows
    from {{ ref('fct_outcomes') }}
    where publication_id is not null
    group by publication_id

),

final as (

    select
        articles.publication_id,
        articles.pmid,
        articles.doi,
        articles.pmcid,
        articles.title,
        articles.first_author,
        articles.journal,
        articles.publication_year,
        articles.publication_date,
        articles.publication_date_precision,
        articles.publication_types,
        classified.therapy_class,
        classified.therapy_class_source,
        coalesce(links.linked_trial_ids, []) as linked_trial_ids,
        coalesce(links.linked_trial_count, 0) as linked_trial_count,
        coalesce(outcome_rows.outcome_rows, 0) as outcome_rows,
        articles.source,
        articles.source_url,
        articles.retrieved_at
    from articles
    left join classified using (publication_id)
    left join links using (publication_id)
    left join outcome_rows using (publication_id)

)

select * from final
