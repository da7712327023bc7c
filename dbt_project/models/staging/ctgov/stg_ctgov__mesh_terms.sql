with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

condition_meshes as (

    select
        nct_id,
        'condition' as mesh_area,
        unnest(condition_browse_module.meshes) as mesh
    from studies

),

intervention_meshes as (

    select
        nct_id,
        'intervention' as mesh_area,
        unnest(intervention_browse_module.meshes) as mesh
    from studies

),

unioned as (

    select * from condition_meshes
    union all
    select * from intervention_meshes

)

select distinct
    nct_id,
    mesh_area,
    {{ normalise_mesh_id('mesh.id') }} as mesh_id,
    mesh.id as mesh_id_as_registered,
    mesh.term as mesh_term
from unioned
where mesh.id is not null
