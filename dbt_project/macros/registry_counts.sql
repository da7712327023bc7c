{#- A count of participants or events as the registry states it: an integer, else null. "NA",
    "12.5", a word, a boolean or an object where a number belongs is unknown (null), never 0;
    a negative integer is kept, so that the record checks (int_quarantined_records) can
    quarantine the record that states it. -#}
{% macro registry_count(expr) -%}
    case when regexp_full_match(trim({{ expr }}), '-?[0-9]{1,9}(\.0+)?')
         then cast(cast(trim({{ expr }}) as double) as integer) end
{%- endmacro %}

{#- A JSON array, or null when the record has something else (an object, a string) there: one
    odd record must not fail the cast for every record. -#}
{% macro json_array(expr) -%}
    case when json_type({{ expr }}) = 'ARRAY' then cast({{ expr }} as json[]) end
{%- endmacro %}

{#- A number the registry posts as text ("84.2", "-1.2"): null for "NA", "NC", "<0.001", "NaN",
    "Infinity" or any other text (try_cast alone would turn "nan" and "inf" into numbers). -#}
{% macro registry_number(expr) -%}
    case when regexp_full_match(trim({{ expr }}), '[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?')
         then try_cast(trim({{ expr }}) as double) end
{%- endmacro %}
