{{ config(materialized='table') }}

{#- The PRISMA 2020 flow of this version: records identified per source, duplicates removed,
    records screened, excluded (with the classifier's reasons), sent to review, studies
    included, reports of included studies, studies with outcome data, and the studies in each
    headline comparison. Two paths, as in the PRISMA 2020 diagram for reviews that search
    registers and databases and also use other methods: the searched registers and databases,
    and the curated outcome sheets (studies a curator extracted whose cohort is not an included
    registry record). Trials are the unit in registers, publications in databases, cohorts
    (studies) from "included" on. Every number reconciles with dim_trials,
    classification_review_queue and therapy_outcome_comparison (tests/prisma_flow_reconciles.sql
    and tests/integration/test_living_evidence.py). -#}
with trials as (

    select * from {{ ref('dim_trials') }}

),

review_queue as (

    select * from {{ ref('classification_review_queue') }}

),

publications as (

    select * from {{ ref('dim_publications') }}

),

comparison as (

    select * from {{ ref('therapy_outcome_comparison') }}

),

effects as (

    select * from {{ ref('outcome_effects') }}

),

registers_identified as (

    select 'ClinicalTrials.gov' as source, count(*) as n from {{ ref('stg_ctgov__studies') }}
    union all
    select 'ICTRP', count(*) from {{ ref('stg_ictrp__trials') }}
    union all
    select 'EU CTIS', count(*) from {{ ref('stg_ctis__trials') }}

),

databases_identified as (

    select 'PubMed' as source, count(*) as n from {{ ref('stg_pubmed__articles') }}
    union all
    select 'Europe PMC', count(*) from {{ ref('stg_europepmc__records') }}

),

trials_by_source as (

    -- which searched register each unique trial of dim_trials came from (int_trials: every
    -- ClinicalTrials.gov record; ICTRP records not merged into another; CTIS trials no other
    -- record names)
    select
        case when registry = 'ClinicalTrials.gov' then 'ClinicalTrials.gov'
             when registry = 'EU CT' then 'EU CTIS'
             else 'ICTRP' end as source,
        count(*) as n
    from trials
    group by 1

),

publications_by_source as (

    select case when source = 'europepmc' then 'Europe PMC' else 'PubMed' end as source,
           count(*) as n
    from publications
    group by 1

),

included_trials as (

    select trial_id
    from trials
    where therapy_class not in ('not_stem_cell', 'needs_review')

),

trial_ids as (

    -- every id a trial of dim_trials is known by (its own and the registry ids it names)
    select distinct
        unnest(list_concat([trial_id], coalesce(registry_ids, []))) as any_id,
        therapy_class not in ('not_stem_cell', 'needs_review') as is_included
    from trials

),

cohorts_with_data as (

    select distinct cohort_id
    from effects
    where nullif(cohort_id, '') is not null

),

cohort_paths as (

    -- a cohort with outcome data is an included registry trial when an included trial of
    -- dim_trials is known by its id; otherwise it reached the review through the curated
    -- sheets (unregistered, not found by the searches, or its registry record not included by
    -- the classifier)
    select
        cohorts_with_data.cohort_id,
        coalesce(bool_or(trial_ids.is_included), false) as is_included_registry_trial,
        count(trial_ids.any_id) > 0 as is_screened_registry_record
    from cohorts_with_data
    left join trial_ids on trial_ids.any_id = cohorts_with_data.cohort_id
    group by cohorts_with_data.cohort_id

),

publication_trials as (

    select publication_id, unnest(linked_trial_ids) as trial_id
    from publications

),

reports as (

    -- publications that report an included study: linked to an included registry trial, or
    -- the source of curated outcome rows
    select publication_id from publications where outcome_rows > 0
    union
    select publication_trials.publication_id
    from publication_trials
    inner join included_trials using (trial_id)

),

open_review_items as (

    select case when review_reason like 'products named only by codes%'
                then 'products named only by codes' else review_reason end as review_reason
    from review_queue
    where review_status = 'open'

),

headline as (

    select * from comparison where is_headline

),

stages as (

    select 1 as stage_order, 'identified' as stage, 'registers and databases' as path,
           source, 'registry record' as record_type, n as count,
           'records the register search returned' as reason
    from registers_identified

    union all
    select 1, 'identified', 'registers and databases', source, 'publication record', n,
           'records the database search returned'
    from databases_identified

    union all
    select 1, 'identified', 'other methods', 'curated outcome sheets', 'study',
           count(*) filter (where not is_included_registry_trial),
           'studies a curator extracted (data/outcomes) whose cohort is not an included '
           || 'registry trial: unregistered, not found by the searches, or its record not '
           || 'included by the classifier'
    from cohort_paths

    union all
    select 2, 'duplicates_removed', 'registers and databases', identified.source,
           'registry record', identified.n - coalesce(kept.n, 0),
           case identified.source
               when 'ClinicalTrials.gov' then 'none: the base every other register merges into'
               when 'ICTRP' then 'the same trial as a ClinicalTrials.gov record (the record '
                   || 'itself, a declared secondary id, or a title, sponsor and date match; '
                   || 'marts.trial_id_merges)'
               else 'an EU CT number a ClinicalTrials.gov or ICTRP record declares' end
    from registers_identified identified
    left join trials_by_source kept using (source)

    union all
    select 2, 'duplicates_removed', 'registers and databases', identified.source,
           'publication record', identified.n - coalesce(kept.n, 0),
           case identified.source
               when 'PubMed' then 'none: the base Europe PMC merges into'
               else 'already in PubMed (the same PMID or DOI) or loaded twice' end
    from databases_identified identified
    left join publications_by_source kept using (source)

    union all
    select 3, 'screened', 'registers and databases', 'registers', 'trial', count(*),
           'unique trials, classified by the therapy rules (seed therapy_rules) and curator '
           || 'overrides (seed classification_overrides)'
    from trials

    union all
    select 3, 'screened', 'registers and databases', 'databases', 'publication', count(*),
           'unique publications, linked to trials'
    from publications

    union all
    select 4, 'excluded', 'registers and databases', 'registers', 'trial', count(*),
           therapy_class_reason
    from trials
    where therapy_class = 'not_stem_cell'
    group by therapy_class_reason

    union all
    select 4, 'sent_to_review', 'registers and databases', 'registers', 'trial', count(*),
           review_reason
    from open_review_items
    group by review_reason

    union all
    select 5, 'included', 'registers and databases', 'registers', 'study', count(*),
           'trials classified as a stem-cell therapy or an islet-transplant comparator'
    from included_trials

    union all
    select 5, 'included', 'other methods', 'curated outcome sheets', 'study',
           count(*) filter (where not is_included_registry_trial),
           'studies a curator extracted outcome data from; '
           || count(*) filter (where not is_included_registry_trial
                                 and is_screened_registry_record)
           || ' of them also screened in a register (not included there)'
    from cohort_paths

    union all
    select 6, 'reports_of_included', 'registers and databases', 'databases', 'report',
           count(*), 'publications linked to an included trial or carrying curated outcome rows'
    from reports

    union all
    select 6, 'reports_not_linked', 'registers and databases', 'databases', 'publication',
           (select count(*) from publications) - count(*),
           'publications not linked to an included study'
    from reports

    union all
    select 7, 'with_outcome_data', 'registers and databases', 'registers', 'study',
           count(*) filter (where is_included_registry_trial),
           'included registry trials with outcome rows (registry results or curated sheets)'
    from cohort_paths

    union all
    select 7, 'with_outcome_data', 'other methods', 'curated outcome sheets', 'study',
           count(*) filter (where not is_included_registry_trial),
           'studies from the curated sheets with outcome rows'
    from cohort_paths

    union all
    select 8, 'in_headline_comparison', 'both', comparison_id, 'study', k_cohorts,
           therapy_label || ' · ' || outcome || ' (' || coalesce(definition_label, definition_id)
           || ', ' || coalesce(window_label, window_id) || ', ' || diabetes_type || ')'
    from headline

)

select
    stage_order,
    stage,
    path,
    source,
    record_type,
    cast("count" as bigint) as "count",
    reason
from stages
