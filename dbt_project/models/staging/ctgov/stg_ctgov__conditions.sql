with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

unnested as (

    select
        nct_id,
        unnest(conditions_module.conditions) as condition_name,
        generate_subscripts(conditions_module.conditions, 1) as condition_index
    from studies

),

cleaned as (

    select
        nct_id,
        condition_index,
        trim(condition_name) as condition_name,
        lower(trim(condition_name)) as condition_name_normalised
    from unnested
    where nullif(trim(condition_name), '') is not null

)

select * from cleaned
