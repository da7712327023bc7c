{#- Registry dates as ICTRP exports them; day-first, never month-first guessing. -#}
{% macro ictrp_date(expr) -%}
    coalesce(
        try_strptime(trim({{ expr }}), '%Y-%m-%d'),
        try_strptime(trim({{ expr }}), '%Y%m%d'),
        try_strptime(trim({{ expr }}), '%d/%m/%Y'),
        try_strptime(trim({{ expr }}), '%d-%m-%Y'),
        try_strptime(trim({{ expr }}), '%d %B %Y'),
        try_strptime(trim({{ expr }}), '%d %b %Y')
    )::date
{%- endmacro %}
