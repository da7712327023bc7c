{#- Registry adverse-event terms mapped to harm categories by the first matching taxonomy rule. -#}
with events as (

    select * from {{ ref('stg_ctgov__result_adverse_events') }}

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
        matches.priority as matched_rule_priority
    from events
    left join matches
        on matches.term is not distinct from events.term
        and matches.organ_system is not distinct from events.organ_system

)

select * from classified
