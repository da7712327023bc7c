with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

lead_sponsors as (

    select
        nct_id,
        'lead_sponsor' as sponsor_role,
        0 as sponsor_index,
        sponsor_collaborators_module.leadSponsor.name as sponsor_name,
        sponsor_collaborators_module.leadSponsor.class as agency_class
    from studies
    where sponsor_collaborators_module.leadSponsor.name is not null

),

collaborator_rows as (

    select
        nct_id,
        unnest(sponsor_collaborators_module.collaborators) as collaborator,
        generate_subscripts(sponsor_collaborators_module.collaborators, 1) as sponsor_index
    from studies

),

collaborators as (

    select
        nct_id,
        'collaborator' as sponsor_role,
        sponsor_index,
        collaborator.name as sponsor_name,
        collaborator.class as agency_class
    from collaborator_rows

),

unioned as (

    select * from lead_sponsors
    union all
    select * from collaborators

)

select
    nct_id,
    sponsor_role,
    sponsor_index,
    trim(sponsor_name) as sponsor_name,
    {{ normalise_enum('agency_class') }} as agency_class
from unioned
