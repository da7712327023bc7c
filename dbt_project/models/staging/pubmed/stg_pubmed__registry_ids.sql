{#- Registry ids a PubMed record carries: DataBankList accessions, and ids mentioned in the
    title or abstract (text and DataBankList can disagree, so both are kept with found_in). -#}
with articles as (

    select * from {{ ref('base_pubmed__latest_articles') }}

),

databank as (

    select
        publication_key as publication_id,
        unnest(from_json(databank_accessions, '[{"databank_name":"VARCHAR","accession_number":"VARCHAR"}]')) as accession
    from articles

),

databank_ids as (

    select distinct
        publication_id,
        case when accession.databank_name = 'ClinicalTrials.gov' then 'ClinicalTrials.gov'
             else accession.databank_name end as registry,
        trim(accession.accession_number) as registry_id,
        'databank' as found_in
    from databank

),

title_ids as (
    {{ extract_registry_ids('articles', 'publication_key', 'title', 'title') }}
),

abstract_ids as (
    {{ extract_registry_ids('articles', 'publication_key', 'abstract', 'abstract') }}
),

unioned as (

    select * from databank_ids
    union all
    select * from title_ids
    union all
    select * from abstract_ids

)

select distinct * from unioned
