{#- Harms at the harm-category level, per source x study x arm/group, counted at the grain the
    source gives, with the therapy class, diabetes type, cohort and overlap flags the safety
    figures need.

    Registry results (ClinicalTrials.gov adverseEventsModule):
    - any serious adverse event, any other (non-serious, above the frequency threshold) adverse
      event and deaths come from the group totals the registry states (seriousNumAffected /
      seriousNumAtRisk, otherNumAffected / otherNumAtRisk, deathsNumAffected / deathsNumAtRisk),
      each with its own at-risk count (count_basis 'group_total');
    - a harm category of the taxonomy is a set of terms. A participant with two terms is counted
      by both, so participants are never summed across terms: the category publishes what the
      data support, at least the largest term's count and at most min(sum of the terms, at risk)
      (affected_low / affected_high, count_basis 'term_bounds', terms listed); the two coincide
      for a category of one term ('single_term') or one with a single non-zero term, and then
      affected_count is that exact count, else null. Events (numEvents) do add up across terms.
    Curated publications (outcome sheets): one row per arm and category; when several sheet rows
    fall in one category (timepoints, definitions) they are bounded the same way.

    reporting_status keeps 'not_reported' (the source reports harms but not this category) apart
    from a reported zero, 'reported_without_count' (a percentage, or a count, without its number
    at risk) and 'reported_qualitative' (mentioned without a count) apart from both. A
    percentage with its n gives a count derived from it (flagged). Results of a quarantined
    record (int_quarantined_records) never get here. -#}
with registry_terms as (

    select * from {{ ref('int_adverse_events_classified') }}

),

event_groups as (

    select * from {{ ref('stg_ctgov__result_event_groups') }} groups
    where not exists (select 1 from {{ ref('int_quarantined_records') }} q
                      where q.source = 'ctgov' and q.record_id = groups.nct_id)

),

studies as (

    select nct_id, retrieved_at from {{ ref('stg_ctgov__studies') }}

),

published as (

    select * from {{ ref('int_outcomes_classified') }}
    where source = 'publication'

),

classification as (

    select
        trial_id,
        case when therapy_class not in ('needs_review', 'unclassified') then therapy_class end as therapy_class,
        -- the sheets' vocabulary (T1D, T2D, T1D/T2D); unknown is null
        case diabetes_type when 'both' then 'T1D/T2D' when 'unknown' then null else diabetes_type end as diabetes_type
    from {{ ref('int_trial_classification') }}

),

taxonomy as (

    select distinct harm_category from {{ ref('harm_taxonomy') }}
    where harm_category <> 'death'
    union select 'other'

),

term_rows as (

    select *, coalesce(at_risk_count, group_at_risk_count) as term_at_risk
    from registry_terms
    -- deaths come from the group totals (deathsNumAffected), not from death terms
    where harm_category <> 'death'

),

registry_by_category as (

    select
        nct_id,
        group_id,
        harm_category,
        count(*) as term_count,
        count(affected_count) as terms_with_count,
        max(affected_count) as largest_term_affected,
        sum(affected_count) as sum_term_affected,
        max(term_at_risk) as at_risk_count,
        case when count(event_count) = count(*) then sum(event_count) end as events_count,
        list(distinct term order by term) as terms,
        string_agg(distinct event_category, ',' order by event_category) as event_category
    from term_rows
    group by 1, 2, 3

),

registry_categories as (

    select
        g.nct_id,
        g.group_id,
        g.group_title,
        t.harm_category,
        r.term_count is not null as is_listed,
        r.terms_with_count > 0 as has_count,
        r.event_category,
        r.events_count,
        r.largest_term_affected as affected_low,
        least(case when r.terms_with_count = r.term_count then r.sum_term_affected end,
              r.at_risk_count) as affected_high,
        r.at_risk_count,
        case when r.term_count = 1 then 'single_term' else 'term_bounds' end as count_basis,
        coalesce(r.terms, []) as terms
    from event_groups g
    cross join taxonomy t
    left join registry_by_category r
        on r.nct_id = g.nct_id and r.group_id = g.group_id and r.harm_category = t.harm_category

),

registry_totals as (

    select
        nct_id, group_id, group_title, harm_category,
        affected is not null as is_listed,
        affected is not null as has_count,
        event_category,
        cast(null as bigint) as events_count,
        affected as affected_low,
        affected as affected_high,
        at_risk as at_risk_count,
        'group_total' as count_basis,
        cast([] as varchar[]) as terms
    from event_groups
    cross join lateral (values
        ('any_serious_adverse_event', 'serious', serious_affected, serious_at_risk),
        ('any_other_adverse_event', 'other', other_affected, other_at_risk),
        ('death', 'deaths', deaths_affected, deaths_at_risk)
    ) as totals(harm_category, event_category, affected, at_risk)

),

registry_facts as (

    select * from registry_categories
    union all
    select * from registry_totals

),

registry_rows as (

    select
        'registry:' || f.nct_id || ':' || f.group_id || ':' || f.harm_category as adverse_event_fact_id,
        'registry_results' as source,
        f.nct_id as study_id,
        f.nct_id as trial_id,
        cast(null as varchar) as publication_id,
        f.group_title as arm,
        f.group_id,
        f.harm_category,
        case
            when not f.is_listed then 'not_reported'
            when not coalesce(f.has_count, false) then 'reported_qualitative'
            when f.at_risk_count is null then 'reported_without_count'
            else 'reported'
        end as reporting_status,
        f.event_category,
        f.events_count,
        case when f.affected_low = f.affected_high then f.affected_low end as affected_count,
        f.affected_low,
        f.affected_high,
        f.at_risk_count,
        case when f.is_listed then f.count_basis end as count_basis,
        false as is_count_derived,
        f.terms,
        'registry_posted' as verification_status,
        'https://clinicaltrials.gov/study/' || f.nct_id || '?tab=results' as source_url,
        f.nct_id || ' adverseEventsModule ' || f.group_id as source_record_id,
        studies.retrieved_at,
        coalesce(classification.therapy_class, 'other_stem_cell') as therapy_class,
        classification.diabetes_type,
        f.nct_id as cohort_id,
        cast(null as integer) as publication_year,
        coalesce(regexp_matches(lower(f.group_title), '{{ control_arm_pattern() }}'), false) as is_control_arm,
        false as is_set_aside_overlap
    from registry_facts f
    left join classification on classification.trial_id = f.nct_id
    left join studies on studies.nct_id = f.nct_id

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
        end as harm_category,
        coalesce(n_events,
                 case when measure = 'count' then cast(value as integer) end,
                 case when measure = 'proportion' and n_analyzed is not null
                      then cast(round(value * n_analyzed) as integer) end) as row_count
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
        max(diabetes_type) as diabetes_type,
        any_value(cohort_id) as cohort_id,
        max(publication_year) as publication_year,
        bool_or(is_control_arm) as is_control_arm,
        bool_or(is_set_aside_overlap) as is_set_aside_overlap,
        max(retrieved_at) as retrieved_at
    from published_harms
    where harm_category is not null
    group by 1, 2

),

published_categories as (

    select harm_category from taxonomy
    union select 'death'
    union select 'any_serious_adverse_event'
    union select 'any_adverse_event'

),

published_by_category as (

    select
        study_id,
        coalesce(arm, '(study)') as arm,
        harm_category,
        count(*) as row_total,
        count(row_count) as rows_with_count,
        max(row_count) as largest_count,
        sum(row_count) as sum_count,
        bool_or(n_events is null and measure = 'proportion' and n_analyzed is not null) as is_count_derived,
        bool_or(n_events is null and measure = 'proportion' and n_analyzed is null) as is_without_count,
        max(coalesce(n_analyzed, n_arm)) as at_risk_count,
        bool_and(measure = 'qualitative') as is_qualitative_only,
        min(verification_status) as verification_status,
        any_value(source_url) as source_url,
        string_agg(outcome_fact_id, ',' order by outcome_fact_id) as source_record_id
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
            when p.is_without_count or p.rows_with_count = 0 or p.at_risk_count is null then 'reported_without_count'
            else 'reported'
        end as reporting_status,
        cast(null as varchar) as event_category,
        case when p.row_total = 1 then p.largest_count end as events_count,
        case when p.rows_with_count = p.row_total
                  and p.largest_count = least(p.sum_count, p.at_risk_count) then p.largest_count end as affected_count,
        p.largest_count as affected_low,
        case when p.largest_count is not null then
            least(case when p.rows_with_count = p.row_total then p.sum_count end, p.at_risk_count)
        end as affected_high,
        p.at_risk_count,
        case when p.harm_category is not null then
            case when p.row_total = 1 then 'sheet_row' else 'sheet_row_bounds' end
        end as count_basis,
        coalesce(p.is_count_derived, false) as is_count_derived,
        cast([] as varchar[]) as terms,
        coalesce(p.verification_status, a.verification_status) as verification_status,
        p.source_url,
        p.source_record_id,
        a.retrieved_at,
        a.therapy_class,
        a.diabetes_type,
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
