{#-
  Therapy classification from the registry text, by ordered rules (seed therapy_rules): for each
  attribute the lowest-priority matching rule wins, and its id is kept so a reader can see why.
  The first rules recognise what is NOT a stem-cell therapy although it mentions stem cells,
  islets or cords (regulatory T cells, platelet-rich plasma, progenitor cells measured under a
  drug, people who already had a transplant, islet function ...). When no rule matches, a
  record that lists interventions is not_stem_cell; a record too thin to tell (no intervention
  listed, or products named only by codes) goes to review (needs_review, with the reason) rather
  than being guessed. Manual overrides (seed classification_overrides) win over rules, say so,
  and close review items. Rules never name trial ids.
-#}
with texts as (

    select * from {{ ref('int_trial_text') }}

),

rules as (

    select * from {{ ref('therapy_rules') }}

),

overrides as (

    select * from {{ ref('classification_overrides') }}

),

matches as (

    select
        texts.trial_id,
        rules.attribute,
        rules.value,
        rules.priority,
        rules.attribute || '#' || rules.priority || ' /' || rules.pattern || '/' as rule_id
    from texts
    inner join rules
        on regexp_matches(
            case when rules.attribute in ('diabetes_type', 'complication') then texts.condition_text
                 else texts.therapy_text end,
            rules.pattern)

),

first_match as (

    select *
    from matches
    where attribute not in ('diabetes_type', 'complication')
    qualify row_number() over (partition by trial_id, attribute order by priority) = 1

),

single_valued as (

    select
        trial_id,
        max(value) filter (where attribute = 'therapy_class') as therapy_class_by_rule,
        max(rule_id) filter (where attribute = 'therapy_class') as therapy_class_rule,
        max(value) filter (where attribute = 'msc_source') as msc_source_by_rule,
        max(rule_id) filter (where attribute = 'msc_source') as msc_source_rule,
        max(value) filter (where attribute = 'donor_type') as donor_type_by_rule,
        max(rule_id) filter (where attribute = 'donor_type') as donor_type_rule,
        max(value) filter (where attribute = 'gene_edited') as gene_edited_by_rule,
        max(value) filter (where attribute = 'encapsulated') as encapsulated_by_rule,
        max(value) filter (where attribute = 'immunosuppression') as immunosuppression_by_rule,
        max(rule_id) filter (where attribute = 'immunosuppression') as immunosuppression_rule
    from first_match
    group by trial_id

),

diabetes as (

    select
        trial_id,
        case
            when bool_or(value = 'T1D') filter (where attribute = 'diabetes_type')
             and bool_or(value = 'T2D') filter (where attribute = 'diabetes_type') then 'both'
            else max(value) filter (where attribute = 'diabetes_type')
        end as diabetes_type_by_rule,
        list(distinct value order by value) filter (where attribute = 'complication') as complications
    from matches
    where attribute in ('diabetes_type', 'complication')
    group by trial_id

),

thinness as (

    select
        trial_id,
        case
            when intervention_count = 0
                then 'no intervention listed in the record'
            when {{ code_only_residue("coalesce(product_names, '')") }} = ''
                 and not list_has_any(intervention_types, ['DRUG', 'DEVICE', 'BEHAVIORAL', 'DIETARY_SUPPLEMENT', 'DIAGNOSTIC_TEST', 'RADIATION'])
                then 'products named only by codes: ' || coalesce(product_names, '')
        end as review_reason
    from texts

),

rule_notes as (

    select attribute || '#' || priority || ' /' || pattern || '/' as rule_id, note
    from rules

),

combined as (

    select
        texts.trial_id,
        texts.registry,
        texts.brief_title,
        texts.product_names,
        coalesce(s.therapy_class_by_rule, case when thinness.review_reason is not null
                                               then 'needs_review' else 'not_stem_cell' end)
            as therapy_class_by_rules,
        coalesce(o_class.value, s.therapy_class_by_rule,
                 case when thinness.review_reason is not null then 'needs_review'
                      else 'not_stem_cell' end) as therapy_class,
        case
            when o_class.value is not null then 'override: ' || o_class.reason
            when s.therapy_class_rule is not null then s.therapy_class_rule
            when thinness.review_reason is not null then 'no rule matched; too thin to classify'
            else 'no rule matched (default not_stem_cell)'
        end as therapy_class_rule,
        case
            when o_class.value is not null then 'curator override: ' || o_class.reason
            when s.therapy_class_rule is not null then rule_notes.note
            when thinness.review_reason is not null then thinness.review_reason
            else 'the listed interventions name no stem-cell or islet product'
        end as therapy_class_reason,
        o_class.value is not null as has_class_override,
        thinness.review_reason,
        s.msc_source_by_rule,
        s.msc_source_rule,
        coalesce(o_donor.value, s.donor_type_by_rule, 'unknown') as donor_type,
        coalesce(s.donor_type_rule, 'no rule matched') as donor_type_rule,
        coalesce(s.gene_edited_by_rule = 'yes', false) as is_gene_edited,
        coalesce(s.encapsulated_by_rule = 'yes', false) as is_encapsulated,
        coalesce(s.immunosuppression_by_rule, 'unknown') as immunosuppression,
        coalesce(s.immunosuppression_rule, 'no rule matched') as immunosuppression_rule,
        coalesce(o_type.value, d.diabetes_type_by_rule, 'unknown') as diabetes_type,
        coalesce(d.complications, []) as complications,
        (o_class.value is not null or o_donor.value is not null or o_type.value is not null) as has_override
    from texts
    left join single_valued s using (trial_id)
    left join thinness using (trial_id)
    left join rule_notes on rule_notes.rule_id = s.therapy_class_rule
    left join diabetes d using (trial_id)
    left join overrides o_class on o_class.trial_id = texts.trial_id and o_class.attribute = 'therapy_class'
    left join overrides o_donor on o_donor.trial_id = texts.trial_id and o_donor.attribute = 'donor_type'
    left join overrides o_type on o_type.trial_id = texts.trial_id and o_type.attribute = 'diabetes_type'

),

final as (

    select
        trial_id,
        registry,
        brief_title,
        product_names,
        therapy_class,
        therapy_class_by_rules,
        therapy_class_rule,
        therapy_class_reason,
        has_class_override,
        review_reason,
        case
            when therapy_class in ('msc', 'msc_exosomes') then coalesce(msc_source_by_rule, 'unstated')
        end as msc_source,
        case when therapy_class in ('msc', 'msc_exosomes') then msc_source_rule end as msc_source_rule,
        donor_type,
        donor_type_rule,
        is_gene_edited,
        is_encapsulated,
        immunosuppression,
        immunosuppression_rule,
        diabetes_type,
        complications,
        len(complications) > 0 as is_complication_trial,
        has_override
    from combined

)

select * from final
