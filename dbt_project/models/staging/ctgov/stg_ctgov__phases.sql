with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(design_module.phases) as phase,
        generate_subscripts(design_module.phases, 1) as phase_index
    from studies

)

select
    nct_id,
    phase_index,
    {{ normalise_enum('phase') }} as phase
from unnested
where phase is not null
