{{ config(materialized='table') }}

{#- What the refresh that ran this build changed, compared with the build before: new trials,
    status changes, new results, new publications, new outcome rows, withdrawn sheets. On the
    first build everything is new; a rebuild in which nothing changed lists nothing. -#}
with history as (

    select * from {{ ref('trial_history') }}

),

builds as (

    select distinct dbt_valid_from as built_at from history

),

latest as (

    select max(built_at) as built_at from builds

),

this_refresh as (

    -- changes count from the start of the refresh that runs this build; a build outside a
    -- refresh (a manual `dbt build`) counts every change of its latest versions
    select coalesce(max(refresh_started_at), timestamptz '1900-01-01') as started_at
    from {{ ref('stg_pipeline__refreshes') }}

),

versions as (

    select
        history.*,
        lag(overall_status) over (partition by trial_id order by dbt_valid_from) as previous_status,
        lag(has_results) over (partition by trial_id order by dbt_valid_from) as previous_has_results,
        lag(phase) over (partition by trial_id order by dbt_valid_from) as previous_phase,
        row_number() over (partition by trial_id order by dbt_valid_from) as version_number
    from history

),

trial_changes as (

    select
        case when version_number = 1 then 'new_trial'
             when previous_status is distinct from overall_status then 'status_change'
             when coalesce(previous_has_results, false) = false and has_results then 'new_results'
             when previous_phase is distinct from phase then 'phase_change'
             else 'other_change' end as change_type,
        trial_id as entity_id,
        'trial' as entity_type,
        case when version_number = 1 then brief_title
             when previous_status is distinct from overall_status then coalesce(previous_status, '(none)') || ' -> ' || coalesce(overall_status, '(none)')
             when previous_phase is distinct from phase then coalesce(previous_phase, '(none)') || ' -> ' || coalesce(phase, '(none)')
             else 'results posted' end as detail,
        dbt_valid_from as changed_at
    from versions, latest, this_refresh
    where versions.dbt_valid_from = latest.built_at
      and versions.dbt_valid_from >= this_refresh.started_at

),

publication_loads as (

    select publication_key, min(fetched_at) as first_loaded_at
    from {{ ref('stg_pubmed__article_loads') }}
    group by publication_key

),

latest_publication_run as (

    select max(fetched_at) as fetched_at from {{ ref('stg_pubmed__article_loads') }}

),

new_publications as (

    select
        'new_publication' as change_type,
        publication_key as entity_id,
        'publication' as entity_type,
        cast(null as varchar) as detail,
        first_loaded_at as changed_at
    from publication_loads, latest_publication_run, this_refresh
    where first_loaded_at = latest_publication_run.fetched_at
      and first_loaded_at >= this_refresh.started_at

),

latest_sheet_run as (

    select run_id from {{ ref('stg_pipeline__ingest_runs') }}
    where source = 'outcomes'
    order by started_at desc
    limit 1

),

sheet_history as (

    select *, row_number() over (partition by sheet_file order by loaded_at desc) as recency,
           -- the status before: a withdrawal takes rows away only after an accepted version
           -- (a rejected sheet whose file is removed is withdrawn too, with no rows to take)
           lead(version_status) over (partition by sheet_file order by loaded_at desc)
               as previous_status
    from {{ ref('stg_outcomes__sheet_versions') }}
    where version_status in ('accepted', 'withdrawn')

),

sheet_rows as (

    select rows.*, versions.recency, versions.run_id as version_run_id,
           versions.loaded_at as version_loaded_at
    from {{ ref('stg_outcomes__sheet_rows') }} rows
    inner join sheet_history versions using (sheet_file, sheet_sha256)
    where versions.recency <= 2 and versions.version_status = 'accepted'

),

withdrawn_sheets as (

    select
        'withdrawn_outcome_sheet' as change_type,
        sheet_history.sheet_file as entity_id,
        'outcome_sheet' as entity_type,
        sheet_history.problems as detail,
        sheet_history.loaded_at as changed_at
    from sheet_history, latest_sheet_run, this_refresh
    where sheet_history.recency = 1
      and sheet_history.loaded_at >= this_refresh.started_at
      and sheet_history.version_status = 'withdrawn'
      and sheet_history.previous_status = 'accepted'
      and sheet_history.run_id = latest_sheet_run.run_id

),

new_outcome_rows as (

    select
        'new_outcome_row' as change_type,
        current_rows.sheet_file || ':' || current_rows.source_row as entity_id,
        'outcome_row' as entity_type,
        current_rows.study_id || ' / ' || current_rows.outcome as detail,
        current_rows.loaded_at as changed_at
    from sheet_rows current_rows, latest_sheet_run, this_refresh
    where current_rows.recency = 1
      and current_rows.version_run_id = latest_sheet_run.run_id
      and current_rows.version_loaded_at >= this_refresh.started_at
      and not exists (
          select 1 from sheet_rows previous_rows
          where previous_rows.recency = 2
            and previous_rows.sheet_file = current_rows.sheet_file
            and previous_rows.study_id is not distinct from current_rows.study_id
            and previous_rows.arm is not distinct from current_rows.arm
            and previous_rows.outcome is not distinct from current_rows.outcome
            and previous_rows.timepoint_as_reported is not distinct from current_rows.timepoint_as_reported
            and previous_rows.measure is not distinct from current_rows.measure
            and previous_rows.value_as_reported is not distinct from current_rows.value_as_reported
      )

),

unioned as (

    select * from trial_changes
    union all select * from new_publications
    union all select * from new_outcome_rows
    union all select * from withdrawn_sheets

)

select * from unioned
