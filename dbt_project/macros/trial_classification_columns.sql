{#- The classification columns every registry's trials carry (int_trials), from a relation
    shaped like int_trial_classification: one list, so the registries cannot drift apart. -#}
{% macro trial_classification_columns(relation) -%}
    {%- set columns = ['therapy_class', 'therapy_class_rule', 'therapy_class_reason', 'msc_source',
                       'donor_type', 'is_gene_edited', 'is_encapsulated', 'immunosuppression',
                       'diabetes_type', 'complications', 'is_complication_trial'] -%}
    {%- for column in columns %}
        {{ relation }}.{{ column }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
