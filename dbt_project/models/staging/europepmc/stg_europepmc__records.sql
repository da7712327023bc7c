with source as (

    select * from {{ source('raw_publications', 'europepmc_records') }}

),

newest_version as (

    select *
    from source
    qualify row_number() over (partition by source_db, record_id order by fetched_at desc, source_file desc, record_index desc) = 1

),

renamed as (

    select
        source_db || ':' || record_id                               as europepmc_id,
        record_id,
        source_db,
        pmid,
        lower(doi)                                                  as doi,
        payload->>'pmcid'                                           as pmcid,
        payload->>'title'                                           as title,
        nullif(trim(split_part(payload->>'authorString', ',', 1)), '') as first_author,
        payload->>'abstractText'                                    as abstract,
        try_cast(payload->>'pubYear' as integer)                    as publication_year,
        coalesce(payload->'journalInfo'->'journal'->>'title', payload->>'journalTitle') as journal_title,
        payload->>'isOpenAccess' = 'Y'                              as is_open_access,
        source_db = 'PPR'                                           as is_preprint,
        coalesce('pmid:' || pmid, 'doi:' || lower(doi), 'europepmc:' || source_db || ':' || record_id) as publication_id,
        'europepmc'                                                 as source,
        record_id                                                   as source_record_id,
        'https://europepmc.org/article/' || source_db || '/' || record_id as source_url,
        fetched_at                                                  as retrieved_at,
        run_id
    from newest_version

)

select * from renamed
