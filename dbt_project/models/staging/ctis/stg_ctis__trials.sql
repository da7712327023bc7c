{#- EU CTIS trials (search row + retrieve detail), newest per ctNumber. Not yet in dim_trials
    (open work: CTIS-only trials are not yet unioned into the trial dimension). -#}
with source as (

    select * from {{ source('raw_ctis', 'ctis_trials') }}

),

newest as (

    select * from source
    qualify row_number() over (partition by record_id order by fetched_at desc, source_file desc, source_line desc) = 1

)

select
    record_id as ct_number,
    payload->>'ctTitle' as title,
    payload->>'shortTitle' as short_title,
    payload->>'sponsor' as sponsor_name,
    payload->>'trialPhase' as phase_text,
    payload->>'trialCountries' as countries_text,
    coalesce(payload->'detail'->>'ctStatus', payload->>'ctStatus') as status,
    try_cast(payload->'detail'->>'startDateEU' as date) as start_date,
    try_cast(payload->'detail'->>'endDateEU' as date) as end_date,
    try_cast(payload->>'decisionDate' as date) as decision_date,
    payload->>'resultsFirstReceived' = 'Yes' as has_results,
    try_cast(payload->>'totalNumberEnrolled' as integer) as enrolled_count,
    'euclinicaltrials.eu' as source,
    record_id as source_record_id,
    'https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT=' || record_id as source_url,
    fetched_at as retrieved_at,
    run_id
from newest
