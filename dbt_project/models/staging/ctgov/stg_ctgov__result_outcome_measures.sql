with measures as (

    select
        nct_id,
        outcome_measure_index,
        json_transform(measure, '{"type":"VARCHAR","title":"VARCHAR","description":"VARCHAR","populationDescription":"VARCHAR","reportingStatus":"VARCHAR","paramType":"VARCHAR","dispersionType":"VARCHAR","unitOfMeasure":"VARCHAR","timeFrame":"VARCHAR","typeUnitsAnalyzed":"VARCHAR"}') as measure
    from {{ ref('base_ctgov__outcome_measures') }}

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
