{#- Referential-closure attempts: a registry id named by a curated sheet, a curated link, a
    secondary-id list or a PubMed DataBank entry that the run had not fetched, and what fetching
    it by id gave (fetched, or unresolved with the reason). -#}
with source as (

    select * from {{ source('raw_references', 'reference_checks') }}

),

renamed as (

    select
        registry,
        registry_id,
        referenced_by,
        status as check_status,
        reason as unresolved_reason,
        run_id,
        checked_at,
        asked_registry
    from source

)

select * from renamed
