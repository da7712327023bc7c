with studies as (

    select * from {{ ref('base_ctgov__latest_studies') }}

),

secondary_ids as (

    select
        nct_id,
        unnest(identification_module.secondaryIdInfos) as secondary,
        generate_subscripts(identification_module.secondaryIdInfos, 1) as secondary_id_index
    from studies

),

aliases as (

    select
        nct_id,
        unnest(identification_module.nctIdAliases) as alias_id,
        generate_subscripts(identification_module.nctIdAliases, 1) as secondary_id_index
    from studies

),

unioned as (

    select
        nct_id,
        'secondary_id' as id_role,
        secondary_id_index,
        trim(secondary.id) as secondary_id,
        {{ normalise_enum('secondary.type') }} as secondary_id_type,
        secondary.domain as secondary_id_domain,
        secondary.link as secondary_id_link
    from secondary_ids
    where nullif(trim(secondary.id), '') is not null

    union all

    select
        nct_id,
        'nct_alias' as id_role,
        secondary_id_index,
        alias_id as secondary_id,
        'NCT_ALIAS' as secondary_id_type,
        null as secondary_id_domain,
        null as secondary_id_link
    from aliases

)

select * from unioned
