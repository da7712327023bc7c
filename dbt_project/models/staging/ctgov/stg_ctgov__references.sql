with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(references_module.references) as reference,
        generate_subscripts(references_module.references, 1) as reference_index
    from studies

)

select
    nct_id,
    reference_index,
    nullif(trim(reference.pmid), '') as pmid,
    {{ normalise_enum('reference.type') }} as reference_type,
    reference.citation as citation
from unnested
