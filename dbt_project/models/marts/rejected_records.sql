{{ config(materialized='table') }}

{#- Every record the loader rejected, with file, line, id and reason. -#}
select * from {{ ref('stg_pipeline__rejected_records') }}
