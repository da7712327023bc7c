with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(conditions_module.keywords) as keyword,
        generate_subscripts(conditions_module.keywords, 1) as keyword_index
    from studies

)

select
    nct_id,
    keyword_index,
    trim(keyword) as keyword
from unnested
where nullif(trim(keyword), '') is not null
