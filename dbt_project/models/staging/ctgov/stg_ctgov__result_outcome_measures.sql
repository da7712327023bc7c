with studies as (

    select nct_id, results_section from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

measures as (

    select
        nct_id,
        unnest(json_transform(results_section->'outcomeMeasuresModule'->'outcomeMeasures',
            '[{"type":"VARCHAR","title":"VARCHAR","description":"VARCHAR","populationDescription":"VARCHAR","reportingStatus":"VARCHAR","paramType":"VARCHAR","dispersionType":"VARCHAR","unitOfMeasure":"VARCHAR","timeFrame":"VARCHAR","typeUnitsAnalyzed":"VARCHAR"}]')) as measure,
        generate_subscripts(json_transform(results_section->'outcomeMeasuresModule'->'outcomeMeasures', '["JSON"]'), 1) as outcome_measure_index
    from studies

)

select
    nct_id,
    outcome_measure_index,
    {{ normalise_enum('measure.type') }} as outcome_type,
    measure.title as outcome_title,
    measure.description as outcome_description,
    measure.populationDescription as population_description,
    measure.timeFrame as time_frame,
    {{ normalise_enum('measure.reportingStatus') }} as reporting_status,
    {{ normalise_enum('measure.paramType') }} as param_type,
    {{ normalise_enum('measure.dispersionType') }} as dispersion_type,
    measure.unitOfMeasure as unit_of_measure,
    measure.typeUnitsAnalyzed as units_analyzed
from measures
