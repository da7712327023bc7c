{{ config(materialized='table') }}

{#- Publications per therapy class and year, with linked-trial counts (class from the linked
    trial's classification, else the curator's label, else keywords: see int_publications_classified). -#}
with publications as (

    select * from {{ ref('int_publications_classified') }}

),

links as (

    select * from {{ ref('trial_publication_links') }}

),

final as (

    select
        publications.therapy_class,
        publications.publication_year,
        count(distinct publications.publication_id) as publication_count,
        count(distinct links.publication_id) as publications_with_linked_trial,
        count(distinct links.trial_id) as linked_trial_count,
        count(distinct publications.publication_id) filter (where therapy_class_source = 'keywords') as publications_classified_by_keywords
    from publications
    left join links on links.publication_id = publications.publication_id
    group by publications.therapy_class, publications.publication_year

)

select * from final
