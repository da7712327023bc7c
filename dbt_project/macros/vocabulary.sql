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

{#- Words naming a cell product (a therapy made of cells), in intervention names or titles. A
    record whose interventions no rule places but which names one goes to review. -#}
{% macro cell_product_pattern() -%}
\bcells?\b|\bcellular\b|cell[- ]based|ex vivo
{%- endmacro %}

{#- Cell words that do not name a cell product: cells measured or targeted (beta, islet, alpha,
    T and B cells, blood cells), and words that only contain "cell". Removed before
    cell_product_pattern is matched. -#}
{% macro without_cell_words_of_other_meaning(expr) -%}
regexp_replace({{ expr }},
    '(beta|β|alpha|islet|pancreatic|sickle|red|white|blood|immune|killer|\bt|\bb|cd4\+?|cd8\+?|plasma|fat|tumou?r|cancer|endothelial)[- ]cells?|cell (phone|count|function|mass|rest|preservation|loss|death|survival|destruction|autoimmunity|proliferation|regeneration|health|reserve|stress|failure|dysfunction|response|secretion)s?|cellulitis|cellulose|fuel cells?',
    ' ', 'g')
{%- endmacro %}
