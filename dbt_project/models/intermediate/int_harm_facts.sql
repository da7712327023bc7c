{#- Harms at the harm-category level, per source x study x arm/group, with the therapy class,
    cohort and overlap flags the safety figures need. reporting_status keeps 'not_reported' (the
    source reports harms but not this category) apart from a reported zero, and
    'reported_without_count' (a percentage without a number of participants) apart from both.
    A percentage with its n gives a count derived from it (flagged). Serious adverse events and
    adverse events of any severity are separate categories. -#}
with registry_events as (

    select * from {{ ref('int_adverse_events_classified') }}

),

event_groups as (

    select * from {{ ref('stg_ctgov__result_event_groups') }}

),

published as (

    select * from {{ ref('int_outcomes_classified') }}
    where source = 'publication'

),

classification as (

    select trial_id, therapy_class from {{ ref('int_trial_classification') }}
    where therapy_class not in ('needs_review', 'unclassified')

),

taxonomy as (

    select distinct harm_category from {{ ref('harm_taxonomy') }}
    union select 'other'

),

registry_by_category as (

    select
        registry_events.nct_id,
        registry_events.group_id,
        registry_events.harm_category,
        sum(event_count) as events_count,
        sum(affected_count) as affected_count,
        max(coalesce(at_risk_count, case event_category when 'serious' then event_groups.serious_at_risk else event_groups.other_at_risk end)) as at_risk_count,
        list(distinct term order by term) as terms,
        string_agg(distinct event_category, ',' order by event_category) as event_category
    from registry_events
    left join event_groups using (nct_id, group_id)
    where registry_events.harm_category <> 'death'
    group by 1, 2, 3

),

registry_rows as (

    select
        'registry:' || g.nct_id || ':' || g.group_id || ':' || t.harm_category as adverse_event_fact_id,
        'registry_results' as source,
        g.nct_id as study_id,
        g.nct_id as trial_id,
        cast(null as varchar) as publication_id,
        g.group_title as arm,
        g.group_id,
        t.harm_category,
        case
            when t.harm_category = 'death' and g.deaths_affected is not null then 'reported'
            when r.harm_category is not null then 'reported'
            else 'not_reported'
        end as reporting_status,
        case when t.harm_category = 'death' then 'deaths' else r.event_category end as event_category,
        case when t.harm_category = 'death' then null else r.events_count end as events_count,
        case when t.harm_category = 'death' then g.deaths_affected else r.affected_count end as affected_count,
        case when t.harm_category = 'death' then g.deaths_at_risk else r.at_risk_count end as at_risk_count,
        false as is_count_derived,
        coalesce(r.terms, []) as terms,
        'registry_posted' as verification_status,
        'https://clinicaltrials.gov/study/' || g.nct_id || '?tab=results' as source_url,
        g.nct_id || ' adverseEventsModule ' || g.group_id as source_record_id,
        coalesce(classification.therapy_class, 'other_stem_cell') as therapy_class,
        g.nct_id as cohort_id,
        cast(null as integer) as publication_year,
        coalesce(regexp_matches(lower(g.group_title), '{{ control_arm_pattern() }}'), false) as is_control_arm,
        false as is_set_aside_overlap
    from event_groups g
    cross join taxonomy t
    left join registry_by_category r
        on r.nct_id = g.nct_id and r.group_id = g.group_id and r.harm_category = t.harm_category
    left join classification on classification.trial_id = g.nct_id

),

published_harms as (

    select
        *,
        case outcome
            when 'tumorigenicity' then 'tumorigenicity'
            when 'teratoma' then 'tumorigenicity'
            when 'microthrombosis' then 'thrombosis'
            when 'infection' then 'infection'
            when 'death' then 'death'
            when 'severe_hypoglycemia' then 'severe_hypoglycemia'
            when 'adverse_event_serious' then
                case when definition_id = 'ae_any_severity' then 'any_adverse_event'
                     else 'any_serious_adverse_event' end
        end as harm_category
    from published

),

published_arms as (

    select
        study_id,
        coalesce(arm, '(study)') as arm,
        any_value(publication_id) as publication_id,
        any_value(trial_id) as trial_id,
        min(verification_status) as verification_status,
        any_value(therapy_class) as therapy_class,
        any_value(cohort_id) as cohort_id,
        max(publication_year) as publication_year,
        bool_or(is_control_arm) as is_control_arm,
        bool_or(is_set_aside_overlap) as is_set_aside_overlap
    from published_harms
    where harm_category is not null
    group by 1, 2

),

published_categories as (

    select harm_category from taxonomy
    union select 'any_serious_adverse_event'
    union select 'any_adverse_event'

),

published_by_category as (

    select
        study_id,
        coalesce(arm, '(study)') as arm,
        harm_category,
        sum(coalesce(n_events,
                     case when measure = 'count' then cast(value as integer) end,
                     case when measure = 'proportion' and n_analyzed is not null
                          then cast(round(value * n_analyzed) as integer) end)) as events_count,
        bool_or(n_events is null and measure = 'proportion' and n_analyzed is not null) as is_count_derived,
        bool_or(n_events is null and measure = 'proportion' and n_analyzed is null) as is_without_count,
        max(coalesce(n_analyzed, n_arm)) as at_risk_count,
        bool_and(measure = 'qualitative') as is_qualitative_only,
        min(verification_status) as verification_status,
        any_value(source_url) as source_url,
        string_agg(outcome_fact_id, ',') as source_record_id
    from published_harms
    where harm_category is not null
    group by 1, 2, 3

),

published_rows as (

    select
        'publication:' || a.study_id || ':' || a.arm || ':' || c.harm_category as adverse_event_fact_id,
        'publication' as source,
        a.study_id,
        a.trial_id,
        a.publication_id,
        a.arm,
        cast(null as varchar) as group_id,
        c.harm_category,
        case
            when p.harm_category is null then 'not_reported'
            when p.is_qualitative_only then 'reported_qualitative'
            when p.is_without_count then 'reported_without_count'
            else 'reported'
        end as reporting_status,
        cast(null as varchar) as event_category,
        p.events_count,
        p.events_count as affected_count,
        p.at_risk_count,
        coalesce(p.is_count_derived, false) as is_count_derived,
        cast([] as varchar[]) as terms,
        coalesce(p.verification_status, a.verification_status) as verification_status,
        p.source_url,
        p.source_record_id,
        a.therapy_class,
        a.cohort_id,
        a.publication_year,
        a.is_control_arm,
        a.is_set_aside_overlap
    from published_arms a
    cross join published_categories c
    left join published_by_category p
        on p.study_id = a.study_id and p.arm = a.arm and p.harm_category = c.harm_category

)

select * from registry_rows
union all
select * from published_rows
