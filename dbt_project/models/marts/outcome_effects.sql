{{ config(materialized='table') }}

{#- One effect per outcome fact (study arm x outcome x definition x timepoint): the proportion
    with its exact interval or the reported value, its definition and window, and whether it
    can be pooled and why not. The rows behind every pooled number. -#}
with effects as (

    select * from {{ ref('int_outcome_effects') }}

)

select * from effects
