{#- Records the mart gate traced failing rows to and quarantined (flows/quarantine.py), with the
    version of the record they apply to. -#}
with source as (

    select * from {{ source('raw_pipeline', 'quarantine_requests') }}

),

renamed as (

    select
        source,
        record_id,
        record_version,
        check_name,
        offending_values,
        refresh_id,
        requested_at
    from source

)

select * from renamed
