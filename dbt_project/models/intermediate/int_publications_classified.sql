{#- One therapy class per publication: the class of its linked trial(s) in the warehouse
    (best-confidence link first), else the curator's label from the outcome sheet, else a
    keyword bucket of title and MeSH ('unclassified' when nothing matches). -#}
with publications as (

    select * from {{ ref('int_publications') }}

),

links as (

    -- every link signal; a (trial, publication) pair counts with its best signal's confidence
    select trial_id, publication_id,
           min(case confidence when 'high' then 1 when 'medium' then 2 else 3 end) as confidence_rank
    from {{ ref('int_trial_publication_links') }}
    group by trial_id, publication_id

),

merged_away as (

    select merged_id from {{ ref('int_trial_id_merges') }} where is_merged

),

trials as (

    -- the trials of dim_trials: every classified registry record not merged into another
    select trial_id, therapy_class from {{ ref('int_trial_classification') }}
    where trial_id not in (select merged_id from merged_away)

),

curated as (

    select distinct publication_id, labels.therapy_class
    from {{ ref('stg_outcomes__published_outcomes') }} outcomes
    inner join {{ ref('published_therapy_labels') }} labels using (therapy_class_as_reported)
    where publication_id is not null

),

mesh as (

    select publication_id, string_agg(descriptor_name, ' | ') as mesh_text
    from {{ ref('stg_pubmed__mesh_headings') }}
    group by publication_id

),

from_links as (

    -- the class of the best-confidence links; links of equal confidence that disagree decide
    -- nothing (the publication falls back to the curator's label or its keywords)
    select publication_id, any_value(therapy_class) as therapy_class
    from (
        select links.publication_id, trials.therapy_class,
               rank() over (partition by links.publication_id
                            order by links.confidence_rank) as confidence_rank
        from links
        inner join trials using (trial_id)
        where trials.therapy_class not in ('needs_review', 'unclassified')
    )
    where confidence_rank = 1
    group by publication_id
    having count(distinct therapy_class) = 1

),

from_curated as (

    select publication_id, any_value(therapy_class) as therapy_class
    from curated
    group by publication_id
    having count(distinct therapy_class) = 1

),

final as (

    select
        publications.publication_id,
        publications.publication_year,
        coalesce(
            from_links.therapy_class,
            from_curated.therapy_class,
            case
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'exosome|extracellular vesicle') then 'msc_exosomes'
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'mesenchymal|stromal') then 'msc'
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'hematopoietic|haematopoietic') then 'hsc'
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'induced pluripotent|ipsc') then 'ipsc_derived_islets'
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'embryonic|pluripotent|stem cell-derived islet') then 'esc_derived_islets'
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'islet') then 'islet_transplant_comparator'
                when regexp_matches(lower(concat_ws(' ', title, mesh_text)), 'stem cell') then 'other_stem_cell'
            end,
            'unclassified'
        ) as therapy_class,
        case when from_links.therapy_class is not null then 'linked_trial'
             when from_curated.therapy_class is not null then 'curator_label'
             else 'keywords' end as therapy_class_source
    from publications
    left join from_links using (publication_id)
    left join from_curated using (publication_id)
    left join mesh using (publication_id)

)

select * from final
