with measures as (

    select
        nct_id,
        outcome_measure_index,
        json_transform(measure, '{"analyses":[{"groupIds":["VARCHAR"],"paramType":"VARCHAR","paramValue":"VARCHAR","dispersionType":"VARCHAR","dispersionValue":"VARCHAR","statisticalMethod":"VARCHAR","pValue":"VARCHAR","pValueComment":"VARCHAR","ciNumSides":"VARCHAR","ciPctValue":"VARCHAR","ciLowerLimit":"VARCHAR","ciUpperLimit":"VARCHAR","testedNonInferiority":"BOOLEAN","nonInferiorityType":"VARCHAR"}]}') as measure
    from {{ ref('base_ctgov__outcome_measures') }}

),

analyses as (

    select nct_id, outcome_measure_index,
           unnest(measure.analyses) as a, generate_subscripts(measure.analyses, 1) as analysis_index
    from measures

)

select
    nct_id,
    outcome_measure_index,
    analysis_index,
    coalesce(a.groupIds, []) as group_ids,
    a.paramType as param_type,
    try_cast(a.paramValue as double) as param_value,
    a.statisticalMethod as statistical_method,
    a.pValue as p_value_text,
    try_cast(regexp_replace(a.pValue, '^\s*[<>≤≥=]+\s*', '') as double) as p_value_numeric,
    nullif(regexp_extract(a.pValue, '^\s*([<>≤≥]=?)', 1), '') as p_value_qualifier,
    a.pValueComment as p_value_comment,
    {{ normalise_enum('a.ciNumSides') }} as ci_sides,
    try_cast(a.ciPctValue as double) as ci_percent,
    try_cast(a.ciLowerLimit as double) as ci_lower_limit,
    try_cast(a.ciUpperLimit as double) as ci_upper_limit,
    {{ normalise_enum('a.dispersionType') }} as dispersion_type,
    try_cast(a.dispersionValue as double) as dispersion_value,
    a.testedNonInferiority as tested_non_inferiority,
    {{ normalise_enum('a.nonInferiorityType') }} as non_inferiority_type
from analyses
