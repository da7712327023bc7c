{{ config(materialized='table') }}

{#- Publications per therapy area and year, with linked-trial counts. Until therapy
    classification lands, the area is a keyword bucket of the title and MeSH headings. -#}
with publications as (

    select * from {{ ref('stg_pubmed__articles') }}

),

mesh as (

    select publication_id, string_agg(descriptor_name, ' | ') as mesh_text
    from {{ ref('stg_pubmed__mesh_headings') }}
    group by publication_id

),

links as (

    select * from {{ ref('trial_publication_links') }}

),

bucketed as (

    select
        publications.publication_id,
        publications.publication_year,
        case
            when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'exosome|extracellular vesicle') then 'msc_exosomes'
            when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'mesenchymal|stromal') then 'msc'
            when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'hematopoietic|haematopoietic') then 'hsc'
            when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'pluripotent|ipsc|embryonic|stem cell-derived islet|stem-cell islet') then 'pluripotent_derived_islets'
            when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'islet') then 'islet_transplantation'
            when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'stem cell') then 'other_stem_cell'
            else 'unclassified'
        end as topic_term
    from publications
    left join mesh using (publication_id)

),

final as (

    select
        topic_term,
        publication_year,
        count(distinct bucketed.publication_id) as publication_count,
        count(distinct links.publication_id) as publications_with_linked_trial,
        count(distinct links.trial_id) as linked_trial_count
    from bucketed
    left join links on links.publication_id = bucketed.publication_id
    group by topic_term, publication_year

)

select * from final
