{{ config(materialized='table') }}

with classes as (

    select * from {{ ref('therapy_classes') }}

),

trials as (

    select therapy_class, msc_source, count(*) as trial_count
    from {{ ref('dim_trials') }}
    group by 1, 2

),

final as (

    select
        classes.therapy_class || coalesce(':' || trials.msc_source, '') as therapy_id,
        classes.therapy_class,
        trials.msc_source,
        classes.label || coalesce(' (' || replace(trials.msc_source, '_', ' ') || ')', '') as label,
        classes.label as class_label,
        classes.is_stem_cell,
        classes.colour,
        classes.description,
        coalesce(trials.trial_count, 0) as trial_count
    from classes
    left join trials using (therapy_class)

)

select * from final
