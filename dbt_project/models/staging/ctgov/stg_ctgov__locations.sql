with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(contacts_locations_module.locations) as location,
        generate_subscripts(contacts_locations_module.locations, 1) as location_index
    from studies

)

select
    nct_id,
    location_index,
    location.facility as facility_name,
    location.city as city,
    location.state as state,
    location.zip as zip_code,
    trim(location.country) as country,
    {{ normalise_enum('location.status') }} as recruitment_status,
    location.geoPoint.lat as latitude,
    location.geoPoint.lon as longitude
from unnested
