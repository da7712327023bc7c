{#- Records whose own numbers are impossible, quarantined where their rows are made: the
    results-derived rows of a record listed here (adverse events, adverse-event terms, registry
    outcome values; a sheet study's outcome and harm rows) stay out of the marts, everything
    else publishes. One row per record x check, with the values that failed it.

    Record checks (the registry itself states the impossibility):
    - a group's participants affected exceed its participants at risk (deaths, serious, other);
    - a term's participants affected exceed its at-risk count (the group's when the term has none);
    - a term's events are fewer than its participants affected;
    - a negative count;
    - a count of participants (or units) above that group's analysed count, or not an integer;
    - one group stated twice where the structure has it once (event groups, a term's stats, a
      measure's groups, a category's measurements), or a measurement without a group.
    Mart gate quarantines (flows/quarantine.py traced failing mart rows to the record) apply to the
    version of the record they were made for; a new version is checked afresh. -#}
with studies as (

    select nct_id, payload_md5 from {{ ref('base_ctgov__latest_studies') }}

),

event_groups as (

    select * from {{ ref('stg_ctgov__result_event_groups') }}

),

terms as (

    select * from {{ ref('stg_ctgov__result_adverse_events') }}

),

outcome_measures as (

    select * from {{ ref('stg_ctgov__result_outcome_measures') }}

),

outcome_groups as (

    select * from {{ ref('stg_ctgov__result_outcome_groups') }}

),

measurements as (

    select * from {{ ref('stg_ctgov__result_measurements') }}

),

requests as (

    select * from {{ ref('stg_pipeline__quarantine_requests') }}

),

sheet_studies as (

    select distinct study_id, sheet_sha256 from {{ ref('stg_outcomes__published_outcomes') }}

),

group_totals as (

    select nct_id, group_id, kind, affected, at_risk
    from event_groups
    cross join lateral (values
        ('deaths', deaths_affected, deaths_at_risk),
        ('serious', serious_affected, serious_at_risk),
        ('other', other_affected, other_at_risk)
    ) as totals(kind, affected, at_risk)

),

group_failures as (

    select nct_id, 'group_affected_exceeds_at_risk' as check_name,
           group_id || ' ' || kind || 'NumAffected=' || affected || ' > ' || kind || 'NumAtRisk=' || at_risk as detail
    from group_totals
    where affected > at_risk
    union all
    select nct_id, 'negative_count',
           group_id || ' ' || kind || ' affected=' || coalesce(affected::varchar, 'null')
           || ', at risk=' || coalesce(at_risk::varchar, 'null')
    from group_totals
    where affected < 0 or at_risk < 0
    union all
    select nct_id, 'duplicate_group', 'event group ' || coalesce(group_id, '(no id)') || ' listed ' || count(*) || ' times'
    from event_groups
    group by nct_id, group_id
    having count(*) > 1

),

term_stats as (

    select
        terms.*,
        coalesce(terms.at_risk_count,
                 case terms.event_category when 'serious' then g.serious_at_risk else g.other_at_risk end) as effective_at_risk,
        terms.event_category || ' term "' || coalesce(terms.term, '') || '" ' || coalesce(terms.group_id, '(no group)') as label
    from terms
    left join event_groups g using (nct_id, group_id)

),

term_failures as (

    select nct_id, 'term_affected_exceeds_at_risk' as check_name,
           label || ' numAffected=' || affected_count || ' > at risk=' || effective_at_risk as detail
    from term_stats
    where affected_count > effective_at_risk
    union all
    select nct_id, 'term_events_below_affected',
           label || ' numEvents=' || event_count || ' < numAffected=' || affected_count
    from term_stats
    where event_count < affected_count
    union all
    select nct_id, 'negative_count',
           label || ' numEvents=' || coalesce(event_count::varchar, 'null') || ', numAffected='
           || coalesce(affected_count::varchar, 'null') || ', numAtRisk=' || coalesce(at_risk_count::varchar, 'null')
    from term_stats
    where event_count < 0 or affected_count < 0 or at_risk_count < 0
    union all
    select nct_id, 'duplicate_group', any_value(label) || ' listed ' || count(*) || ' times'
    from term_stats
    group by nct_id, event_category, event_index, group_id
    having count(*) > 1

),

counted_values as (

    select
        measurements.nct_id,
        measurements.outcome_measure_index,
        measurements.group_id,
        measurements.value_numeric,
        outcome_measures.param_type,
        outcome_groups.participants_analyzed,
        outcome_groups.units_analyzed_count,
        'measure ' || measurements.outcome_measure_index || ' ' || coalesce(measurements.group_id, '(no group)')
        || coalesce(' "' || measurements.category_title || '"', '') as label
    from measurements
    inner join outcome_measures using (nct_id, outcome_measure_index)
    left join outcome_groups using (nct_id, outcome_measure_index, group_id)
    where outcome_measures.param_type in ('COUNT_OF_PARTICIPANTS', 'COUNT_OF_UNITS')

),

outcome_failures as (

    select nct_id, 'count_exceeds_analyzed' as check_name,
           label || ' count=' || value_numeric || ' > participants analysed=' || participants_analyzed as detail
    from counted_values
    where param_type = 'COUNT_OF_PARTICIPANTS' and value_numeric > participants_analyzed
    union all
    select nct_id, 'count_exceeds_analyzed',
           label || ' count=' || value_numeric || ' > units analysed=' || units_analyzed_count
    from counted_values
    where param_type = 'COUNT_OF_UNITS' and value_numeric > units_analyzed_count
    union all
    select nct_id, 'count_not_integer', label || ' count=' || value_numeric
    from counted_values
    where value_numeric <> round(value_numeric)
    union all
    select nct_id, 'negative_count', label || ' count=' || value_numeric
    from counted_values
    where value_numeric < 0
    union all
    select nct_id, 'negative_count',
           'measure ' || outcome_measure_index || ' ' || group_id || ' participants analysed=' || participants_analyzed
    from outcome_groups
    where participants_analyzed < 0 or units_analyzed_count < 0
    union all
    select nct_id, 'duplicate_group',
           'measure ' || outcome_measure_index || ' group ' || coalesce(group_id, '(no id)') || ' listed ' || count(*) || ' times'
    from outcome_groups
    group by nct_id, outcome_measure_index, group_id
    having count(*) > 1
    union all
    select nct_id, 'duplicate_group',
           'measure ' || outcome_measure_index || ' class ' || class_index || ' category ' || category_index
           || ' group ' || coalesce(group_id, '(no id)') || ' listed ' || count(*) || ' times'
    from measurements
    where group_id is not null
    group by nct_id, outcome_measure_index, class_index, category_index, group_id
    having count(*) > 1
    union all
    select nct_id, 'measurement_without_group',
           'measure ' || outcome_measure_index || ' class ' || class_index || ' category ' || category_index
    from measurements
    where group_id is null

),

record_failures as (

    select * from group_failures
    union all
    select * from term_failures
    union all
    select * from outcome_failures

),

from_record_checks as (

    select
        'ctgov' as source,
        record_failures.nct_id as record_id,
        studies.payload_md5 as record_version,
        check_name,
        left(string_agg(distinct detail, '; ' order by detail), 1000) as offending_values,
        'record_check' as detected_by,
        cast(null as varchar) as refresh_id,
        cast(null as timestamptz) as requested_at
    from record_failures
    left join studies using (nct_id)
    group by record_failures.nct_id, studies.payload_md5, check_name

),

from_mart_gate as (

    -- a gate quarantine holds while the record is the version it was made for
    select
        requests.source,
        requests.record_id,
        requests.record_version,
        requests.check_name,
        any_value(requests.offending_values order by requests.requested_at desc) as offending_values,
        'mart_gate' as detected_by,
        min(requests.refresh_id order by requests.requested_at) as refresh_id,
        min(requests.requested_at) as requested_at
    from requests
    left join studies
        on requests.source = 'ctgov' and studies.nct_id = requests.record_id
    left join sheet_studies
        on requests.source = 'outcome_sheet' and sheet_studies.study_id = requests.record_id
        and sheet_studies.sheet_sha256 = requests.record_version
    where (requests.source = 'ctgov' and studies.payload_md5 is not distinct from requests.record_version)
       or (requests.source = 'outcome_sheet' and sheet_studies.study_id is not null)
    group by requests.source, requests.record_id, requests.record_version, requests.check_name

),

final as (

    select
        *,
        case source
            when 'ctgov' then 'https://clinicaltrials.gov/study/' || record_id || '?tab=results'
        end as source_url
    from (
        select * from from_record_checks
        union all
        select * from from_mart_gate
    )

)

select * from final
