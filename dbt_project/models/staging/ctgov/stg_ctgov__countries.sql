with locations as (

    select * from {{ ref('stg_ctgov__locations') }}

),

countries as (

    select
        nct_id,
        country,
        count(*) as site_count
    from locations
    where country is not null and country <> ''
    group by nct_id, country

)

select * from countries
