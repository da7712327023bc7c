{{ config(materialized='table') }}

{#- Freshness of every source: last load, last attempt, and stale when the latest attempt
    failed (its last good data stay in the warehouse). -#}
select * from {{ ref('int_source_status') }}
