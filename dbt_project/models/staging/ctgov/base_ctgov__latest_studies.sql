{{ config(materialized='table') }}

{#-
  The one place the study JSON is parsed: newest version per nct_id, transformed once into a
  typed struct (json_transform) so the entity models below unnest columns instead of re-parsing
  ~17 KB of JSON per study each. Materialised as a table for that reason.
-#}

with source as (

    select * from {{ source('raw', 'ctgov_studies') }}

),

newest_version as (

    select *
    from source
    qualify row_number() over (
        partition by nct_id
        order by last_update_post_date desc nulls last, fetched_at desc, source_file desc, source_line desc
    ) = 1

),

parsed as (

    select
        nct_id,
        last_update_post_date,
        run_id,
        fetched_at,
        source_file,
        source_line,
        json_transform(payload, '{{ ctgov_study_structure() }}') as study
    from newest_version

)

select * from parsed
