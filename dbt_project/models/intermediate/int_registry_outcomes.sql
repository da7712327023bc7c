{#- Posted registry outcome values with their group, denominator and a Betacell outcome code
    derived from the measure title (anything unrecognised is 'other'). The title and unit
    patterns are seeds (registry_outcome_patterns, unit_patterns): the lowest priority whose
    patterns (RE2, on lower-cased text) match wins. -#}
with measures as (

    select * from {{ ref('stg_ctgov__result_outcome_measures') }}

),

groups as (

    select * from {{ ref('stg_ctgov__result_outcome_groups') }}

),

measurements as (

    select * from {{ ref('stg_ctgov__result_measurements') }}

),

outcome_patterns as (

    select * from {{ ref('registry_outcome_patterns') }}

),

unit_patterns as (

    select * from {{ ref('unit_patterns') }} where applies_to = 'registry'

),

codes as (

    select
        measures.nct_id,
        measures.outcome_measure_index,
        (select arg_min(patterns.outcome, patterns.priority) from outcome_patterns patterns
         where regexp_matches(lower(measures.outcome_title), patterns.title_pattern)
           and (patterns.title_also_pattern is null
                or regexp_matches(lower(measures.outcome_title), patterns.title_also_pattern))
        ) as outcome,
        (select arg_min(patterns.unit, patterns.priority) from unit_patterns patterns
         where regexp_matches(lower(measures.unit_of_measure), patterns.unit_pattern)
           and (patterns.title_pattern is null
                or regexp_matches(lower(measures.outcome_title), patterns.title_pattern))
        ) as unit
    from measures

),

joined as (

    select
        measurements.*,
        measures.outcome_type,
        measures.outcome_title,
        measures.time_frame,
        measures.param_type,
        measures.dispersion_type,
        measures.unit_of_measure,
        groups.group_title,
        groups.participants_analyzed,
        coalesce(codes.outcome, 'other') as outcome,
        coalesce(codes.unit, case when measures.param_type in ('COUNT_OF_PARTICIPANTS', 'COUNT_OF_UNITS')
                                  then 'count' else 'as_reported' end) as unit
    from measurements
    inner join measures using (nct_id, outcome_measure_index)
    left join groups using (nct_id, outcome_measure_index, group_id)
    left join codes using (nct_id, outcome_measure_index)

)

select * from joined
