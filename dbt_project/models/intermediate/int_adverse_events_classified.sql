{#- Registry adverse-event terms (one row per term x group, the registry's grain) mapped to harm
    categories by the first matching taxonomy rule, with their event group's title, its at-risk
    total for the term's category (the fallback when the term gives no numAtRisk) and the
    record's retrieval time. Terms of a quarantined record (int_quarantined_records) are left
    out here, where the rows are made. -#}
with events as (

    select * from {{ ref('stg_ctgov__result_adverse_events') }} terms
    where not exists (select 1 from {{ ref('int_quarantined_records') }} q
                      where q.source = 'ctgov' and q.record_id = terms.nct_id)

),

event_groups as (

    select nct_id, group_id, group_title, serious_at_risk, other_at_risk, time_frame
    from {{ ref('stg_ctgov__result_event_groups') }}

),

studies as (

    select nct_id, retrieved_at from {{ ref('stg_ctgov__studies') }}

),

rules as (

    select * from {{ ref('harm_taxonomy') }}

),

distinct_terms as (

    select distinct term, organ_system from events

),

matches as (

    select
        distinct_terms.term,
        distinct_terms.organ_system,
        rules.harm_category,
        rules.priority
    from distinct_terms
    inner join rules
        on regexp_matches(
            lower(case rules.match_field when 'term' then distinct_terms.term else distinct_terms.organ_system end),
            rules.pattern
        )
    qualify row_number() over (partition by distinct_terms.term, distinct_terms.organ_system order by rules.priority) = 1

),

classified as (

    select
        events.*,
        coalesce(matches.harm_category, 'other') as harm_category,
        matches.priority as matched_rule_priority,
        event_groups.group_title,
        case events.event_category when 'serious' then event_groups.serious_at_risk
             else event_groups.other_at_risk end as group_at_risk_count,
        event_groups.time_frame,
        studies.retrieved_at
    from events
    left join matches
        on matches.term is not distinct from events.term
        and matches.organ_system is not distinct from events.organ_system
    -- one row per term x group: a record listing a group twice is quarantined (left out above)
    left join event_groups
        on event_groups.nct_id = events.nct_id and event_groups.group_id = events.group_id
    left join studies on studies.nct_id = events.nct_id

)

select * from classified
