{#- The run ledger: one row per source per run. -#}
with source as (

    select * from {{ source('raw_pipeline', 'ingest_runs') }}

),

renamed as (

    select
        run_id,
        source,
        mode,
        status as run_status,
        started_at,
        finished_at,
        topic_version,
        api_version,
        data_timestamp as source_data_timestamp,
        since_date,
        watermark,
        pages,
        records_landed,
        records_loaded,
        records_rejected,
        message
    from source

)

select * from renamed
