{{ config(materialized='table') }}

{#- Registry records the rules could not classify: a named product no class fits, conflicting
    signals, a product named only in the description or one no rule places, stem cells of
    unstated kind in a title-only record, no intervention listed, or products named only by
    codes. A curator decides. An entry of seed classification_overrides for the trial closes the
    item and its value becomes the trial's class. -#}
with classified as (

    select * from {{ ref('int_trial_classification') }}
    where therapy_class_by_rules = 'needs_review'

),

final as (

    select
        trial_id,
        registry,
        brief_title,
        product_names,
        classification_case as review_kind,
        review_reason,
        case when has_class_override then 'closed' else 'open' end as review_status,
        case when has_class_override then therapy_class end as resolved_therapy_class,
        case when has_class_override then therapy_class_rule end as resolution
    from classified

)

select * from final
