{#- Per source: when it last loaded, its latest attempt and whether that attempt failed (then
    its data are those of an earlier run: stale). -#}
with runs as (

    select * from {{ ref('stg_pipeline__ingest_runs') }}

),

sources as (

    select source, label as source_label from {{ ref('sources') }}

),

loaded as (

    select source, max(finished_at) as last_loaded_at,
           cast(sum(records_loaded) as bigint) as records_loaded
    from runs where run_status = 'loaded'
    group by source

),

latest as (

    select source, run_status as last_status, message as last_message,
           finished_at as last_attempt_at
    from runs
    where run_status in ('loaded', 'failed', 'skipped_unchanged')
    qualify row_number() over (partition by source order by finished_at desc) = 1

),

data_timestamps as (

    select source, source_data_timestamp
    from runs
    where run_status = 'loaded' and source_data_timestamp is not null
    qualify row_number() over (partition by source order by finished_at desc) = 1

),

final as (

    select
        sources.source,
        sources.source_label,
        loaded.last_loaded_at,
        latest.last_attempt_at,
        latest.last_status,
        coalesce(latest.last_status = 'failed', false) as is_stale,
        case when latest.last_status = 'failed' then latest.last_message end as last_error,
        data_timestamps.source_data_timestamp,
        coalesce(loaded.records_loaded, 0) as records_loaded
    from sources
    left join loaded using (source)
    left join latest using (source)
    left join data_timestamps using (source)

)

select * from final
