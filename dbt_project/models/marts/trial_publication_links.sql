{{ config(materialized='table') }}

with links as (

    select * from {{ ref('int_trial_publication_links') }}

),

publications as (

    select publication_id, pmid, doi from {{ ref('stg_pubmed__articles') }}

),

trials as (

    select nct_id from {{ ref('stg_ctgov__studies') }}

),

ranked as (

    select
        trial_id,
        publication_id,
        any_value(registry) as registry,
        list(distinct link_source order by link_source) as link_sources,
        list(distinct reference_type order by reference_type) filter (where reference_type is not null) as ctgov_reference_types,
        max(case confidence when 'high' then 3 when 'medium' then 2 else 1 end) as confidence_rank,
        count(*) as signal_count
    from links
    group by trial_id, publication_id

),

final as (

    select
        ranked.trial_id,
        ranked.publication_id,
        ranked.registry,
        publications.pmid,
        coalesce(publications.doi, case when ranked.publication_id like 'doi:%' then substr(ranked.publication_id, 5) end) as doi,
        ranked.link_sources,
        coalesce(ranked.ctgov_reference_types, []) as ctgov_reference_types,
        case ranked.confidence_rank when 3 then 'high' when 2 then 'medium' else 'low' end as confidence,
        ranked.signal_count,
        trials.nct_id is not null as is_trial_in_warehouse,
        publications.publication_id is not null as is_publication_in_warehouse
    from ranked
    left join publications on publications.publication_id = ranked.publication_id
    left join trials on trials.nct_id = ranked.trial_id

)

select * from final
