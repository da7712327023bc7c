with articles as (

    select * from {{ ref('base_pubmed__latest_articles') }}

),

unnested as (

    select
        publication_key as publication_id,
        unnest(from_json(mesh_headings, '[{"descriptor_ui":"VARCHAR","descriptor_name":"VARCHAR","is_major_topic":"BOOLEAN","qualifiers":[{"qualifier_ui":"VARCHAR","qualifier_name":"VARCHAR","is_major_topic":"BOOLEAN"}]}]')) as heading
    from articles

)

select
    publication_id,
    heading.descriptor_ui as descriptor_ui,
    heading.descriptor_name as descriptor_name,
    heading.is_major_topic as is_major_topic,
    coalesce(heading.qualifiers, []) as qualifiers
from unnested
