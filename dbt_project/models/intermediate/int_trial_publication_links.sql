{#-
  Every signal that a publication reports a registered trial, one row per
  (trial, publication, link_source). Confidence: high = the publication or registry record
  names the other explicitly (PubMed DataBank accession, registry RESULT reference, curated);
  medium = NLM-derived reference or an id mentioned in the title/abstract; low = BACKGROUND
  reference or a curated link flagged unverified.
-#}
with pubmed_ids as (

    select * from {{ ref('stg_pubmed__registry_ids') }}

),

ctgov_references as (

    select * from {{ ref('stg_ctgov__references') }}

),

europepmc_records as (

    select * from {{ ref('stg_europepmc__records') }}

),

curated as (

    select * from {{ ref('curated_publication_trial_links') }}

),

from_pubmed as (

    select
        registry_id as trial_id,
        registry,
        publication_id,
        case found_in when 'databank' then 'pubmed_databank' else 'pubmed_text_mention' end as link_source,
        null as reference_type,
        case found_in when 'databank' then 'high' else 'medium' end as confidence,
        'PubMed ' || found_in as evidence
    from pubmed_ids

),

from_ctgov as (

    select
        nct_id as trial_id,
        'ClinicalTrials.gov' as registry,
        'pmid:' || pmid as publication_id,
        'ctgov_reference' as link_source,
        reference_type,
        case reference_type when 'RESULT' then 'high' when 'DERIVED' then 'medium' else 'low' end as confidence,
        'ClinicalTrials.gov referencesModule (' || coalesce(reference_type, 'untyped') || ')' as evidence
    from ctgov_references
    where pmid is not null

),

europepmc_text as (

    select publication_id, concat_ws(' ', title, abstract) as text from europepmc_records

),

from_europepmc as (

    select
        registry_id as trial_id,
        registry,
        publication_id,
        'europepmc_text_mention' as link_source,
        null as reference_type,
        'medium' as confidence,
        'Europe PMC title/abstract' as evidence
    from (
        {{ extract_registry_ids('europepmc_text', 'publication_id', 'text', 'europepmc') }}
    )

),

from_curated as (

    select
        trial_id,
        case
            when trial_id like 'NCT%' then 'ClinicalTrials.gov'
            when trial_id like 'ChiCTR%' then 'ChiCTR'
            when trial_id like 'IRCT%' then 'IRCT'
            else 'other'
        end as registry,
        coalesce('pmid:' || nullif(pmid, ''), 'doi:' || lower(doi)) as publication_id,
        'curated_outcome_sheet' as link_source,
        null as reference_type,
        case when trial_id_as_curated ilike '%unverified%' then 'low' else 'high' end as confidence,
        'curated: ' || trial_id_as_curated as evidence
    from curated

),

unioned as (

    select * from from_pubmed
    union all select * from from_ctgov
    union all select * from from_europepmc
    union all select * from from_curated

)

select distinct * from unioned
