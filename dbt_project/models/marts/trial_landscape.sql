{{ config(materialized='table') }}

with trials as (

    select * from {{ ref('dim_trials') }}

),

by_country as (

    select
        trials.*,
        unnest(case when len(countries) = 0 then ['(not reported)'] else countries end) as country
    from trials

),

final as (

    select
        therapy_class,
        coalesce(msc_source, '') as msc_source,
        coalesce(phase, '(not reported)') as phase,
        coalesce(overall_status, '(not reported)') as overall_status,
        country,
        year(start_date) as start_year,
        coalesce(sponsor_class, '(not reported)') as sponsor_class,
        diabetes_type,
        count(*) as trial_count,
        -- a sum of integers is HUGEINT in DuckDB and DOUBLE in Parquet: counts stay BIGINT
        cast(sum(enrollment_count) filter (where enrollment_type = 'ACTUAL') as bigint) as enrollment_actual,
        cast(sum(enrollment_count) filter (where enrollment_type = 'ESTIMATED') as bigint) as enrollment_estimated,
        cast(sum(enrollment_count) filter (where enrollment_type is null) as bigint) as enrollment_type_unknown,
        count(*) filter (where enrollment_count is null) as trials_without_enrollment,
        list(trial_id order by trial_id) as trial_ids
    from by_country
    group by all

)

select * from final
