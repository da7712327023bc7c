{{ config(materialized='table') }}

{#- Trial ids that curated sheets, curated links, secondary-id lists or PubMed DataBank entries
    name but that no registry record in the warehouse carries, even after the run tried to fetch
    them by id; with who names them and why they stay unresolved. A gate warning, never a reason
    to publish nothing. -#}
with references_found as (

    select * from {{ ref('int_trial_references') }}
    where not is_in_warehouse

),

latest_checks as (

    select *
    from {{ ref('stg_references__checks') }}
    qualify row_number() over (partition by registry_id order by checked_at desc) = 1

),

last_asked as (

    select registry_id, max(checked_at) as last_asked_at
    from {{ ref('stg_references__checks') }}
    where asked_registry
    group by registry_id

),

grouped as (

    select
        registry,
        registry_id,
        list(distinct referenced_by order by referenced_by) as referenced_by,
        cast(count(distinct referenced_by) as integer) as reference_count
    from references_found
    group by registry, registry_id

),

final as (

    select
        grouped.registry,
        grouped.registry_id,
        grouped.referenced_by,
        grouped.reference_count,
        coalesce(latest_checks.unresolved_reason,
                 case when latest_checks.check_status = 'fetched'
                      then 'fetched by id, but its record did not reach staging'
                      else 'not checked yet (referenced only after the last closure)' end)
            as unresolved_reason,
        latest_checks.checked_at as last_checked_at,
        latest_checks.run_id as last_checked_run_id,
        last_asked.last_asked_at
    from grouped
    left join latest_checks using (registry_id)
    left join last_asked using (registry_id)

)

select * from final
