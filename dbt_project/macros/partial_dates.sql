{#-
  Registry dates arrive as yyyy, yyyy-MM or yyyy-MM-dd. We keep the original text, its
  precision ('year', 'month', 'day') and a normalised date set to the FIRST day of the period
  (2015-08 -> 2015-08-01). Anything else yields null date and null precision — a date of the
  right shape that names no real day ('2020-13-45') too: its text is kept beside it.
-#}
{% macro partial_date(expr) -%}
    case
        when regexp_full_match({{ expr }}, '\d{4}-\d{2}-\d{2}') then try_cast({{ expr }} as date)
        when regexp_full_match({{ expr }}, '\d{4}-\d{2}') then try_cast({{ expr }} || '-01' as date)
        when regexp_full_match({{ expr }}, '\d{4}') then try_cast({{ expr }} || '-01-01' as date)
    end
{%- endmacro %}

{% macro partial_date_precision(expr) -%}
    case
        when ({{ partial_date(expr) }}) is null then null
        when regexp_full_match({{ expr }}, '\d{4}-\d{2}-\d{2}') then 'day'
        when regexp_full_match({{ expr }}, '\d{4}-\d{2}') then 'month'
        when regexp_full_match({{ expr }}, '\d{4}') then 'year'
    end
{%- endmacro %}

{#- Age strings such as '18 Years', '6 Months' -> years (decimal); null when absent. -#}
{% macro age_in_years(expr) -%}
    case
        when regexp_matches(lower({{ expr }}), '^\s*[0-9.]+\s*year') then try_cast(regexp_extract({{ expr }}, '[0-9.]+') as double)
        when regexp_matches(lower({{ expr }}), '^\s*[0-9.]+\s*month') then try_cast(regexp_extract({{ expr }}, '[0-9.]+') as double) / 12
        when regexp_matches(lower({{ expr }}), '^\s*[0-9.]+\s*week') then try_cast(regexp_extract({{ expr }}, '[0-9.]+') as double) / 52.1775
        when regexp_matches(lower({{ expr }}), '^\s*[0-9.]+\s*day') then try_cast(regexp_extract({{ expr }}, '[0-9.]+') as double) / 365.25
        when regexp_matches(lower({{ expr }}), '^\s*[0-9.]+\s*hour') then try_cast(regexp_extract({{ expr }}, '[0-9.]+') as double) / 8766
        when regexp_matches(lower({{ expr }}), '^\s*[0-9.]+\s*minute') then try_cast(regexp_extract({{ expr }}, '[0-9.]+') as double) / 525960
    end
{%- endmacro %}

{#- Normalise an enum-like value: trimmed, upper case, spaces and dashes to underscores. -#}
{% macro normalise_enum(expr) -%}
    nullif(regexp_replace(upper(trim({{ expr }})), '[\s\-/]+', '_', 'g'), '')
{%- endmacro %}

{#- MeSH ids appear zero-padded in some records (D000003922): normalise to D003922. -#}
{% macro normalise_mesh_id(expr) -%}
    case
        when regexp_full_match({{ expr }}, '[A-Z]0{3}\d{6}') then substr({{ expr }}, 1, 1) || substr({{ expr }}, 5)
        else {{ expr }}
    end
{%- endmacro %}
