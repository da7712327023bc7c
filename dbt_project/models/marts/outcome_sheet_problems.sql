{{ config(materialized='table') }}

{#- Every problem flows/sources/outcomes/parse.py found in what is in effect and on disk for each
    outcome sheet: the warnings of the version in effect (kept and reported), and the errors of a
    rejected version still in the folder (the version in effect stays). Versions no longer on disk
    (replaced, restored over, or their file removed) have no problems here. One row per problem,
    parsed from the version's problem list ("<file> row <n> column <c>: <problem>"); rows are the
    spreadsheet's own (the header is row 1). -#}
with versions as (

    select *, version_status as status,
        row_number() over (partition by sheet_file order by loaded_at desc, run_id desc) as recency
    from {{ ref('stg_outcomes__sheet_versions') }}

),

on_disk as (

    -- the newest version row of a file is what the last run saw in the folder under its name
    -- (withdrawn: the file is gone, and with it the problems of every version of it)
    select * from versions
    where recency = 1 and status in ('accepted', 'rejected')

),

in_effect as (

    -- the newest accepted version stays in effect while a rejected version sits on disk
    select versions.* from versions
    inner join on_disk using (sheet_file)
    where versions.status = 'accepted'
    qualify row_number() over (partition by versions.sheet_file
                               order by versions.loaded_at desc, versions.run_id desc) = 1

),

current_versions as (

    select * from on_disk where problems is not null
    union all by name
    select * from in_effect
    where problems is not null
      and sheet_sha256 not in (select sheet_sha256 from on_disk)

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
