{#- Records the loader rejected, with where they were and why. -#}
with source as (

    select * from {{ source('raw_pipeline', 'rejected_records') }}

),

renamed as (

    select
        source,
        run_id,
        source_file,
        source_line,
        record_id,
        reason,
        record_excerpt,
        rejected_at
    from source

)

select * from renamed
