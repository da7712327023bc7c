with newest_version as (

    select * from {{ ref('base_pubmed__latest_articles') }}

),

renamed as (

    select
        -- ids
        publication_key                                        as publication_id,
        pmid,
        lower(doi)                                             as doi,
        pmcid,

        -- descriptive
        title,
        vernacular_title,
        journal_title,
        journal_iso_abbreviation,
        abstract is not null                                   as has_abstract,
        record_type,
        citation_status,
        from_json(publication_types, '["VARCHAR"]')            as publication_types,
        from_json(languages, '["VARCHAR"]')                    as languages,

        -- dates: first day of the period, with precision (year, season, month, day)
        pub_year                                               as publication_year,
        case
            when pub_year is null then null
            else make_date(pub_year, coalesce(pub_month, 1), coalesce(pub_day, 1))
        end                                                    as publication_date,
        pub_date_precision                                     as publication_date_precision,
        pub_date_text                                          as publication_date_text,

        -- provenance
        'pubmed'                                               as source,
        coalesce(pmid, doi)                                    as source_record_id,
        case when pmid is not null then 'https://pubmed.ncbi.nlm.nih.gov/' || pmid || '/'
             else 'https://doi.org/' || doi end                as source_url,
        fetched_at                                             as retrieved_at,
        run_id,
        source_file

    from newest_version

)

select * from renamed
