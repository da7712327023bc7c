{{ config(materialized='table') }}

{#- Every problem flows/sources/outcomes/parse.py found in the current version of each outcome sheet: the
    warnings of an accepted sheet (kept and reported), or the errors that rejected it. One row per
    problem, parsed from the version's problem list ("<file> row <n> column <c>: <problem>"). -#}
with versions as (

    select *, version_status as status,
        row_number() over (partition by sheet_file order by loaded_at desc, run_id desc) as recency
    from {{ ref('stg_outcomes__sheet_versions') }}

),

current_versions as (

    -- a withdrawn sheet (its file removed) has no problems any more
    select * from versions
    where recency = 1 and status in ('accepted', 'rejected') and problems is not null

),

problems as (

    select
        sheet_file, sheet_sha256, run_id, status, loaded_at,
        -- problems are joined with '; ' and each starts with the file name and ' row ': split
        -- only there, so a '; ' inside a problem's text stays
        string_split(replace(problems, '; ' || sheet_file || ' row ',
                             chr(31) || sheet_file || ' row '), chr(31)) as problem_list
    from current_versions

),

numbered as (

    select
        sheet_file, sheet_sha256, run_id, status, loaded_at,
        unnest(problem_list) as problem_text,
        generate_subscripts(problem_list, 1) as problem_number
    from problems

),

final as (

    select
        sheet_file,
        sheet_sha256,
        cast(problem_number as integer) as problem_number,
        status as sheet_status,
        case when status = 'accepted' then 'warning' else 'error' end as severity,
        try_cast(regexp_extract(problem_text, ' row (\d+) column ', 1) as integer) as sheet_row,
        nullif(regexp_extract(problem_text, ' row \d+ column (.*?): ', 1), '') as sheet_column,
        coalesce(nullif(regexp_extract(problem_text, ' row \d+ column .*?: (.*)$', 1), ''),
                 problem_text) as problem,
        run_id,
        loaded_at
    from numbered

)

select * from final
