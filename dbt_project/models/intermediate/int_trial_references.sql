{#- Every registry id that something in the warehouse names — a curated outcome sheet, a
    curated publication link, a registry's secondary-id list or a PubMed DataBank entry — with
    what named it and whether a record of that trial is in the warehouse. Ids are found with the
    patterns of the seed registry_id_patterns. -#}
with patterns as (

    select registry, pattern from {{ ref('registry_id_patterns') }}

),

sheet_texts as (

    select distinct
        'outcome_sheet:' || split_part(outcome_row_id, ':', 1) as referenced_by,
        trial_id_as_curated as text
    from {{ ref('stg_outcomes__published_outcomes') }}
    where trial_id_as_curated is not null

),

curated_link_texts as (

    select distinct 'curated_link' as referenced_by, trial_id as text
    from {{ ref('curated_publication_trial_links') }}
    where trial_id is not null

),

ctgov_secondary_texts as (

    select 'ctgov_secondary_id:' || nct_id as referenced_by, secondary_id as text
    from {{ ref('stg_ctgov__secondary_ids') }}
    where id_role = 'secondary_id'

),

ictrp_secondary_texts as (

    select 'ictrp_secondary_id:' || trial_id as referenced_by, unnest(secondary_ids) as text
    from {{ ref('stg_ictrp__trials') }}

),

databank_texts as (

    select 'pubmed_databank:' || publication_id as referenced_by, registry_id as text
    from {{ ref('stg_pubmed__registry_ids') }}
    where found_in = 'databank'

),

texts as (

    select * from sheet_texts
    union all select * from curated_link_texts
    union all select * from ctgov_secondary_texts
    union all select * from ictrp_secondary_texts
    union all select * from databank_texts

),

references_found as (

    select distinct
        patterns.registry,
        unnest(regexp_extract_all(texts.text, patterns.pattern)) as registry_id,
        texts.referenced_by
    from texts
    cross join patterns

),

known_ids as (

    select nct_id as registry_id from {{ ref('stg_ctgov__studies') }}
    union select secondary_id from {{ ref('stg_ctgov__secondary_ids') }} where id_role = 'nct_alias'
    union select trial_id from {{ ref('stg_ictrp__trials') }}
    union select ictrp_trial_id from {{ ref('stg_ictrp__trials') }}
    union select ct_number from {{ ref('stg_ctis__trials') }}

),

final as (

    select
        references_found.registry,
        references_found.registry_id,
        references_found.referenced_by,
        known_ids.registry_id is not null as is_in_warehouse
    from references_found
    left join known_ids using (registry_id)

)

select * from final
