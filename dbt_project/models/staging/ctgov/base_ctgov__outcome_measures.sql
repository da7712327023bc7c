{#- One row per posted outcome measure (as JSON), with its position: the result models below
    each transform only the part they need. -#}
with studies as (

    select nct_id, results_section from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

measures as (

    select
        nct_id,
        {{ json_array("results_section->'outcomeMeasuresModule'->'outcomeMeasures'") }} as measures
    from studies

)

select
    nct_id,
    unnest(measures) as measure,
    generate_subscripts(measures, 1) as outcome_measure_index
from measures
