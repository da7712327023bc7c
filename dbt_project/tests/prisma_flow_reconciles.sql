{#- The PRISMA flow adds up and agrees with the marts it summarises; any row returned is a
    stage that does not reconcile (named, with both numbers). -#}
with flow as (

    select * from {{ ref('prisma_flow') }}

),

total as (

    select stage, path, record_type, sum("count") as n
    from flow
    where stage <> 'in_headline_comparison'
    group by all

),

checks as (

    select 'registry records identified - duplicates = trials screened' as check_name,
           (select sum(n) from total where stage = 'identified' and record_type = 'registry record')
           - (select sum(n) from total where stage = 'duplicates_removed' and record_type = 'registry record') as flow_count,
           (select count(*) from {{ ref('dim_trials') }}) as mart_count
    union all
    select 'trials screened = excluded + sent to review + included',
           (select n from total where stage = 'screened' and record_type = 'trial'),
           coalesce((select n from total where stage = 'excluded'), 0)
           + coalesce((select n from total where stage = 'sent_to_review'), 0)
           + (select n from total where stage = 'included' and path = 'registers and databases')
    union all
    select 'excluded = dim_trials not_stem_cell',
           coalesce((select n from total where stage = 'excluded'), 0),
           (select count(*) from {{ ref('dim_trials') }} where therapy_class = 'not_stem_cell')
    union all
    select 'sent to review = open items of classification_review_queue',
           coalesce((select n from total where stage = 'sent_to_review'), 0),
           (select count(*) from {{ ref('classification_review_queue') }} where review_status = 'open')
    union all
    select 'publication records identified - duplicates = publications screened',
           (select sum(n) from total where stage = 'identified' and record_type = 'publication record')
           - (select sum(n) from total where stage = 'duplicates_removed' and record_type = 'publication record'),
           (select count(*) from {{ ref('dim_publications') }})
    union all
    select 'publications screened = reports of included + not linked',
           (select n from total where stage = 'screened' and record_type = 'publication'),
           (select sum(n) from total where stage in ('reports_of_included', 'reports_not_linked'))
    union all
    select 'studies with outcome data = cohorts in outcome_effects',
           (select sum(n) from total where stage = 'with_outcome_data'),
           (select count(distinct cohort_id) from {{ ref('outcome_effects') }} where nullif(cohort_id, '') is not null)
    union all
    select 'other methods: identified = included = with outcome data',
           (select n from total where stage = 'identified' and path = 'other methods'),
           (select n from total where stage = 'included' and path = 'other methods')
    union all
    select 'other methods: included = with outcome data',
           (select n from total where stage = 'included' and path = 'other methods'),
           (select n from total where stage = 'with_outcome_data' and path = 'other methods')
    union all
    select 'one flow row per headline comparison, counting its cohorts',
           (select coalesce(sum("count"), 0) from flow where stage = 'in_headline_comparison'),
           (select coalesce(sum(k_cohorts), 0) from {{ ref('therapy_outcome_comparison') }} where is_headline)

)

select * from checks where flow_count is distinct from mart_count
