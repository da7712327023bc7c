{#- The registry text a classifier may read, per trial (ClinicalTrials.gov, ICTRP, EU CTIS):
    - therapy_text: what the record says is given: titles, interventions (names, types,
      descriptions, other names), arm groups (labels, descriptions, intervention names), keywords;
    - description_text: the record's prose about the study: brief summary and detailed
      description (ClinicalTrials.gov only; null when the record has neither). Prose also names
      products only as background, so the classifier reads it apart from therapy_text;
    - title_text: the titles alone; condition_text: conditions, titles, keywords, condition MeSH.
    All lower-cased. Also how much the record says about its product: the number of
    interventions listed, their types, and their names (with other names) without placebo and
    control arms (product_names), which decide whether a record is too thin to classify. -#}
with studies as (

    select * from {{ ref('stg_ctgov__studies') }}

),

interventions as (

    select
        nct_id,
        string_agg(concat_ws(' ', intervention_type, intervention_name, intervention_description,
                             array_to_string(other_names, ' ')), ' | ') as intervention_text,
        count(*) as intervention_count,
        list(distinct intervention_type order by intervention_type)
            filter (where intervention_type is not null) as intervention_types,
        lower(string_agg(concat_ws(' ', intervention_name, array_to_string(other_names, ' ')), ' | ')
            filter (where not regexp_matches(lower(intervention_name), '{{ control_arm_pattern() }}'))) as product_names
    from {{ ref('stg_ctgov__interventions') }}
    group by nct_id

),

arms as (

    select nct_id, string_agg(concat_ws(' ', arm_group_label, arm_group_description,
                                        array_to_string(intervention_names, ' ')), ' | ') as arm_text
    from {{ ref('stg_ctgov__arm_groups') }}
    group by nct_id

),

conditions as (

    select nct_id, string_agg(condition_name, ' | ') as condition_names
    from {{ ref('stg_ctgov__conditions') }}
    group by nct_id

),

keywords as (

    select nct_id, string_agg(keyword, ' | ') as keywords
    from {{ ref('stg_ctgov__keywords') }}
    group by nct_id

),

meshes as (

    select nct_id, string_agg(mesh_term, ' | ') as mesh_terms
    from {{ ref('stg_ctgov__mesh_terms') }}
    where mesh_area = 'condition'
    group by nct_id

),

combined as (

    select
        studies.nct_id as trial_id,
        'ClinicalTrials.gov' as registry,
        studies.brief_title,
        lower(concat_ws(' | ', brief_title, official_title, acronym, intervention_text, arm_text, keywords)) as therapy_text,
        lower(concat_ws(' | ', brief_title, official_title, condition_names, keywords, mesh_terms)) as condition_text,
        lower(nullif(concat_ws(' | ', nullif(trim(brief_summary), ''), nullif(trim(detailed_description), '')), '')) as description_text,
        lower(concat_ws(' | ', brief_title, official_title, acronym)) as title_text,
        coalesce(intervention_count, 0) as intervention_count,
        coalesce(intervention_types, []) as intervention_types,
        product_names
    from studies
    left join interventions using (nct_id)
    left join arms using (nct_id)
    left join conditions using (nct_id)
    left join keywords using (nct_id)
    left join meshes using (nct_id)

),

ictrp as (

    select
        trial_id,
        registry,
        title as brief_title,
        lower(concat_ws(' | ', title, scientific_title, array_to_string(interventions, ' | '))) as therapy_text,
        lower(concat_ws(' | ', title, scientific_title, array_to_string(conditions, ' | '))) as condition_text,
        cast(null as varchar) as description_text,
        lower(concat_ws(' | ', title, scientific_title)) as title_text,
        len(coalesce(interventions, [])) as intervention_count,
        cast([] as varchar[]) as intervention_types,
        lower(array_to_string(interventions, ' | ')) as product_names
    from {{ ref('stg_ictrp__trials') }}
    where registry <> 'ClinicalTrials.gov'

),

ctis as (

    -- EU CTIS records carry titles only: a rule may still match them, else they go to review;
    -- a CTIS trial that a ClinicalTrials.gov or ICTRP record names is classified there
    select
        ct_number as trial_id,
        'EU CT' as registry,
        coalesce(short_title, title) as brief_title,
        lower(concat_ws(' | ', title, short_title)) as therapy_text,
        lower(concat_ws(' | ', title, short_title)) as condition_text,
        cast(null as varchar) as description_text,
        lower(concat_ws(' | ', title, short_title)) as title_text,
        cast(0 as bigint) as intervention_count,
        cast([] as varchar[]) as intervention_types,
        cast(null as varchar) as product_names
    from {{ ref('stg_ctis__trials') }}
    where ct_number not in (
        select declared_id from {{ ref('int_trial_registry_ids') }} where declared_registry = 'EU CT')

)

select * from combined
union all
select * from ictrp
union all
select * from ctis
