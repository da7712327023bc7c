{#-
  Trial registry id patterns (RE2). The same list lives in flows/registry_ids.py; a test keeps
  them identical. EudraCT numbers have a 0-led sequence part, EU CT numbers a 5-led one plus a
  two-digit suffix, which keeps the two apart.
-#}
{% macro registry_id_patterns() %}
    {{ return([
        ('ClinicalTrials.gov', 'NCT[0-9]{8}'),
        ('ChiCTR', 'ChiCTR(?:-[A-Z]{2,4}-[0-9]{8}|[0-9]{10})'),
        ('IRCT', 'IRCT[0-9]{10,16}N[0-9]{1,3}'),
        ('CTRI', 'CTRI/[0-9]{4}/[0-9]{2,3}/[0-9]{6}'),
        ('ISRCTN', 'ISRCTN[0-9]{8}'),
        ('EU CT', '\\b20[0-9]{2}-5[0-9]{5}-[0-9]{2}-[0-9]{2}\\b'),
        ('EudraCT', '\\b(?:19|20)[0-9]{2}-0[0-9]{5}-[0-9]{2}\\b'),
        ('jRCT', 'jRCT[a-z]?[0-9]{10}'),
        ('ANZCTR', 'ACTRN[0-9]{14}'),
        ('DRKS', 'DRKS[0-9]{8}'),
    ]) }}
{% endmacro %}

{#- One row per (key, registry, id) found in a text column of a relation/CTE. -#}
{% macro extract_registry_ids(relation, key_column, text_column, found_in) %}
    {%- for registry, pattern in registry_id_patterns() %}
    select distinct
        {{ key_column }} as publication_id,
        '{{ registry }}' as registry,
        unnest(regexp_extract_all({{ text_column }}, '{{ pattern }}')) as registry_id,
        '{{ found_in }}' as found_in
    from {{ relation }}
    where {{ text_column }} is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{% endmacro %}
