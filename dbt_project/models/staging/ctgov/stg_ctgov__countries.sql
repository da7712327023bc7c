{#- Countries of a trial's sites, with the number of sites in each (from the site list). -#}
with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

sites as (

    select
        nct_id,
        trim(unnest(contacts_locations_module.locations).country) as country
    from studies

),

countries as (

    select
        nct_id,
        country,
        count(*) as site_count
    from sites
    where country is not null and country <> ''
    group by nct_id, country

)

select * from countries
