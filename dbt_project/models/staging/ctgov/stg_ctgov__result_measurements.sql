{#- Every posted value. Values arrive as strings and may be "NA" / "NC" (not available, not
    computed; with a comment): the text is kept, value_numeric is null when the text is not a
    number, never 0. -#}
with measures as (

    select
        nct_id,
        outcome_measure_index,
        json_transform(measure, '{"classes":[{"title":"VARCHAR","categories":[{"title":"VARCHAR","measurements":[{"groupId":"VARCHAR","value":"VARCHAR","spread":"VARCHAR","lowerLimit":"VARCHAR","upperLimit":"VARCHAR","comment":"VARCHAR"}]}]}]}') as measure
    from {{ ref('base_ctgov__outcome_measures') }}

),

classes as (

    select nct_id, outcome_measure_index,
           unnest(measure.classes) as class, generate_subscripts(measure.classes, 1) as class_index
    from measures

),

categories as (

    select nct_id, outcome_measure_index, class_index, class.title as class_title,
           unnest(class.categories) as category, generate_subscripts(class.categories, 1) as category_index
    from classes

),

measurements as (

    select nct_id, outcome_measure_index, class_index, class_title, category_index,
           category.title as category_title, unnest(category.measurements) as m
    from categories

)

select
    nct_id,
    outcome_measure_index,
    class_index,
    class_title,
    category_index,
    category_title,
    m.groupId as group_id,
    m.value as value_text,
    {{ registry_number('m.value') }} as value_numeric,
    m.value is null or upper(trim(m.value)) in ('', 'NA', 'N/A', 'NC', 'NR') as is_value_not_available,
    m.spread as spread_text,
    {{ registry_number('m.spread') }} as spread_numeric,
    {{ registry_number('m.lowerLimit') }} as lower_limit,
    {{ registry_number('m.upperLimit') }} as upper_limit,
    m.comment as comment
from measurements
