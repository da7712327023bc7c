{#- Comparator arms and interventions: placebo, sham, standard or usual care, controls. They
    carry the study's label but not its product. -#}
{% macro control_arm_pattern() -%}
control|placebo|sham|standard (of )?(care|therapy|treatment)|conventional|usual care|insulin (only|alone)|untreated|normal saline|\bsaline\b
{%- endmacro %}

{#- Intervention names that say nothing about the product once product codes (words with a
    digit: CELZ-201, DT2-SCT, CYP-006TK) and words about dosing or administration are removed. -#}
{% macro code_only_residue(expr) -%}
trim(regexp_replace(regexp_replace(regexp_replace({{ expr }},
    '[a-z0-9-]*[0-9][a-z0-9-]*', ' ', 'g'),
    '\b(administration|administered|infusion|intravenous|iv|injection|injected|dose|doses|dosing|low|high|mid|arm|group|cohort|part|phase|treatment|therapy|product|single|multiple|repeat|repeated|and|or|of|with|the|a|in)\b', ' ', 'g'),
    '[^a-z]+', ' ', 'g'))
{%- endmacro %}
