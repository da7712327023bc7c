{{ config(materialized='table') }}

{#- Records quarantined in the current warehouse, one row per record x check: their results-derived
    rows are kept out of every mart, the rest publishes (see int_quarantined_records for the record
    checks; flows/quarantine.py for the mart gate's). first_seen_at is kept from the previously
    published version while the record stays quarantined. -#}
{%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) %}
with quarantined as (

    select * from {{ ref('int_quarantined_records') }}

),

final as (

    select
        quarantined.source,
        quarantined.record_id,
        quarantined.check_name,
        quarantined.offending_values,
        quarantined.detected_by,
        quarantined.record_version,
        quarantined.source_url,
        {%- if previous %}
        coalesce(previous.first_seen_at, quarantined.requested_at, now()) as first_seen_at
        {%- else %}
        coalesce(quarantined.requested_at, now()) as first_seen_at
        {%- endif %}
    from quarantined
    {%- if previous %}
    left join {{ this }} as previous
        on previous.source = quarantined.source and previous.record_id = quarantined.record_id
        and previous.check_name = quarantined.check_name
    {%- endif %}

)

select * from final
