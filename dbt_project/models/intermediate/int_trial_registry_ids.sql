{#- Every registry id each record declares: its own id and the registry ids found in its
    secondary ids (ClinicalTrials.gov secondaryIdInfos / aliases; ICTRP Secondary_ID and
    other_records). The input to cross-registry deduplication. -#}
with ctgov_secondary as (

    select nct_id as record_id, secondary_id as text from {{ ref('stg_ctgov__secondary_ids') }}

),

ictrp_secondary as (

    select trial_id as record_id, unnest(secondary_ids) as text from {{ ref('stg_ictrp__trials') }}

),

declared as (

    select 'ClinicalTrials.gov' as record_registry, * from ctgov_secondary
    union all
    select 'ictrp' as record_registry, * from ictrp_secondary

),

extracted as (
    {%- for registry, pattern in registry_id_patterns() %}
    select record_id, record_registry, '{{ registry }}' as declared_registry,
           unnest(regexp_extract_all(text, '{{ pattern }}')) as declared_id
    from declared
    {%- if not loop.last %} union all {%- endif %}
    {%- endfor %}

),

own_ids as (

    select nct_id as record_id, 'ClinicalTrials.gov' as record_registry,
           'ClinicalTrials.gov' as declared_registry, nct_id as declared_id
    from {{ ref('stg_ctgov__studies') }}
    union all
    select trial_id, 'ictrp', registry, trial_id from {{ ref('stg_ictrp__trials') }}

)

select distinct * from own_ids
union
select distinct * from extracted where declared_id is not null
