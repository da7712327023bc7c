{#-
  Therapy classification from the registry text. Rules never name trial ids; the rules are the
  ordered patterns of seed therapy_rules plus the named cell products of seed cell_products
  (trade names and descriptive names, each with what it is), which come first.

  1. The product text (titles, interventions, arms, keywords) decides: for each attribute the
     lowest-priority matching rule wins, and its id is kept so a reader can see why. The first
     rules recognise what is NOT a stem-cell therapy although it mentions stem cells, islets or
     cords (regulatory T cells, platelet-rich plasma, progenitor cells measured under a drug,
     people who already had a transplant, islet function ...).
  2. The classifier knows when it does not know; these go to needs_review with the reason,
     never to not_stem_cell:
     - a named product the seed cannot place in one class (seed class needs_review);
     - signals that conflict: two products the record names that seed therapy_class_conflicts
       says cannot both be the trial's class, or a description (brief summary, detailed
       description) naming a more specific product than a 'not a stem-cell therapy' rule;
     - stem or progenitor cells of unstated kind in a record that lists no intervention;
     - no rule placed the product text, but the description names a stem-cell product and
       the interventions could be one (a device or procedure), or the interventions name a
       cell product the rules cannot place;
     - a record too thin to tell (no intervention listed, or products named only by codes).
  3. Prose names products as background too, so the description never decides a class alone;
     it refines a bare "stem cells" into the specific class it names, and it can only send a
     record to review otherwise.
  When no rule matches and none of the above holds, the record is not_stem_cell. Manual
  overrides (seed classification_overrides) win over everything, say so, and close review items.
-#}
with texts as (

    select * from {{ ref('int_trial_text') }}

),

classes as (

    select * from {{ ref('therapy_classes') }}

),

rules as (

    select
        attribute,
        priority,
        pattern,
        value,
        note,
        value_if_thin,
        attribute || '#' || priority || ' /' || pattern || '/' as rule_id
    from {{ ref('therapy_rules') }}

    union all

    -- a named product decides the class, and the MSC source when it has one
    select
        'therapy_class', priority, pattern, therapy_class,
        product || ': ' || what_it_is, null, 'cell_products#' || priority || ' ' || product
    from {{ ref('cell_products') }}

    union all

    select
        'msc_source', priority, pattern, msc_source,
        product || ': ' || what_it_is, null, 'cell_products#' || priority || ' ' || product
    from {{ ref('cell_products') }}
    where msc_source is not null

),

conflicts as (

    -- symmetric: either class may be the winning one
    select therapy_class as class_a, other_class as class_b, reason from {{ ref('therapy_class_conflicts') }}
    union all
    select other_class, therapy_class, reason from {{ ref('therapy_class_conflicts') }}

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
        rules.rule_id,
        rules.value_if_thin,
        regexp_extract(
            case when rules.attribute in ('diabetes_type', 'complication') then texts.condition_text
                 else texts.therapy_text end,
            rules.pattern) as matched_text
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
    qualify row_number() over (partition by trial_id, attribute order by priority, rule_id) = 1

),

description_match as (

    -- the most specific therapy-class rule the description matches (products first)
    select
        texts.trial_id,
        rules.value as description_class,
        rules.priority as description_priority,
        rules.rule_id as description_rule,
        regexp_extract(texts.description_text, rules.pattern) as description_matched_text
    from texts
    inner join rules
        on rules.attribute = 'therapy_class'
       and texts.description_text is not null
       and regexp_matches(texts.description_text, rules.pattern)
    qualify row_number() over (partition by texts.trial_id order by rules.priority, rules.rule_id) = 1

),

description_msc_source as (

    -- the MSC source the description gives, for a record whose product text gives none
    select
        texts.trial_id,
        rules.value as msc_source,
        'description ' || rules.rule_id as msc_source_rule
    from texts
    inner join rules
        on rules.attribute = 'msc_source'
       and texts.description_text is not null
       and regexp_matches(texts.description_text, rules.pattern)
    qualify row_number() over (partition by texts.trial_id order by rules.priority, rules.rule_id) = 1

),

single_valued as (

    select
        trial_id,
        max(value) filter (where attribute = 'therapy_class') as therapy_class_by_rule,
        max(rule_id) filter (where attribute = 'therapy_class') as therapy_class_rule,
        max(priority) filter (where attribute = 'therapy_class') as therapy_class_priority,
        max(matched_text) filter (where attribute = 'therapy_class') as therapy_class_matched_text,
        max(value_if_thin) filter (where attribute = 'therapy_class') as therapy_class_value_if_thin,
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

product_conflict as (

    -- another product the product text names, or the description's product, that cannot share
    -- the trial with the winning class (seed therapy_class_conflicts)
    select
        s.trial_id,
        min(other.rule_id || ' ("' || other.matched_text || '")') as conflicting_signal,
        min(conflicts.reason) as conflict_reason
    from single_valued s
    inner join (
        select trial_id, value, rule_id, matched_text
        from matches
        where attribute = 'therapy_class'
        union all
        select trial_id, description_class, description_rule, description_matched_text
        from description_match
    ) as other
        on other.trial_id = s.trial_id
    inner join conflicts
        on conflicts.class_a = s.therapy_class_by_rule
       and conflicts.class_b = other.value
    group by s.trial_id

),

thinness as (

    select
        trial_id,
        intervention_count = 0 and description_text is null as lists_no_intervention,
        case
            when intervention_count = 0
                then 'no intervention listed in the record'
            when {{ code_only_residue("coalesce(product_names, '')") }} = ''
                 and not list_has_any(intervention_types, ['DRUG', 'DEVICE', 'BEHAVIORAL', 'DIETARY_SUPPLEMENT', 'DIAGNOSTIC_TEST', 'RADIATION'])
                then 'products named only by codes: ' || coalesce(product_names, '')
        end as thin_reason,
        -- the interventions could be a cell product (not only drugs, diets, behaviour, tests)
        len(intervention_types) = 0
            or not list_has_all(['DRUG', 'BEHAVIORAL', 'DIETARY_SUPPLEMENT', 'DIAGNOSTIC_TEST', 'RADIATION'], intervention_types)
            as could_be_cell_product,
        regexp_extract(
            {{ without_cell_words_of_other_meaning("concat_ws(' | ', coalesce(product_names, ''), title_text)") }},
            '{{ cell_product_pattern() }}') as unplaced_cell_product
    from texts

),

rule_notes as (

    select rule_id, note from rules where attribute = 'therapy_class'

),

signals as (

    select
        texts.trial_id,
        texts.product_names,
        s.therapy_class_by_rule,
        s.therapy_class_rule,
        s.therapy_class_priority,
        s.therapy_class_matched_text,
        s.therapy_class_value_if_thin,
        rule_notes.note as rule_note,
        thinness.lists_no_intervention,
        thinness.thin_reason,
        thinness.could_be_cell_product,
        nullif(thinness.unplaced_cell_product, '') as unplaced_cell_product,
        c.conflicting_signal,
        c.conflict_reason,
        d.description_class,
        d.description_priority,
        d.description_rule,
        d.description_matched_text,
        d_class.is_stem_cell as description_class_is_stem_cell
    from texts
    left join single_valued s using (trial_id)
    left join thinness using (trial_id)
    left join product_conflict c using (trial_id)
    left join description_match d using (trial_id)
    left join classes d_class on d_class.therapy_class = d.description_class
    left join rule_notes on rule_notes.rule_id = s.therapy_class_rule

),

verdicts as (

    -- which case decides the record, in order (see the header)
    select
        *,
        case
            when therapy_class_by_rule = 'needs_review'
                then 'named_product_not_placed'
            when therapy_class_by_rule is not null and lists_no_intervention and therapy_class_value_if_thin is not null
                then 'stem_cells_of_unstated_kind_in_a_thin_record'
            when conflicting_signal is not null
                then 'conflicting_products'
            when therapy_class_by_rule = 'not_stem_cell' and description_priority < therapy_class_priority
                 and description_class not in ('not_stem_cell', 'needs_review')
                then 'description_conflicts'
            when therapy_class_rule like 'therapy_class#105 %' and description_class_is_stem_cell
                 and description_class <> 'other_stem_cell'
                then 'description_names_the_kind'
            when therapy_class_by_rule is not null
                then 'rule'
            when thin_reason is not null
                then 'too_thin'
            when description_class not in ('not_stem_cell', 'needs_review') and could_be_cell_product
                then 'named_only_in_the_description'
            when unplaced_cell_product is not null
                then 'cell_product_not_placed'
            else 'no_rule'
        end as verdict
    from signals

),

decided as (

    select
        trial_id,
        verdict,
        therapy_class_by_rule,
        therapy_class_rule,
        case verdict
            when 'rule' then therapy_class_by_rule
            when 'stem_cells_of_unstated_kind_in_a_thin_record' then therapy_class_value_if_thin
            when 'description_names_the_kind' then description_class
            when 'no_rule' then 'not_stem_cell'
            else 'needs_review'
        end as therapy_class_by_rules,
        case verdict
            when 'rule' then therapy_class_rule
            when 'named_product_not_placed' then therapy_class_rule
            when 'stem_cells_of_unstated_kind_in_a_thin_record'
                then therapy_class_rule || ' in a record that lists no intervention'
            when 'conflicting_products'
                then 'conflicting signals: ' || therapy_class_rule || ' and ' || conflicting_signal
            when 'description_conflicts'
                then 'conflicting signals: ' || therapy_class_rule || ' and description ' || description_rule
            when 'description_names_the_kind' then 'description ' || description_rule
            when 'too_thin' then 'no rule matched; too thin to classify'
            when 'named_only_in_the_description'
                then 'no rule matched the interventions; description ' || description_rule
            when 'cell_product_not_placed' then 'no rule matched; a cell product is named'
            else 'no rule matched (default not_stem_cell)'
        end as therapy_class_rule_applied,
        case verdict
            when 'named_product_not_placed'
                then 'a named product the rules cannot place in one class: ' || rule_note
            when 'stem_cells_of_unstated_kind_in_a_thin_record'
                then rule_note || ' ("' || therapy_class_matched_text
                     || '") in a record that lists no intervention: too thin to tell which'
            when 'conflicting_products'
                then 'conflicting signals: ' || conflict_reason
            when 'description_conflicts'
                then 'conflicting signals: the interventions read as not a stem-cell therapy ('
                     || rule_note || '), the description names ' || description_class
                     || ' ("' || description_matched_text || '")'
            when 'too_thin' then thin_reason
            when 'named_only_in_the_description'
                then 'the description names ' || description_class || ' ("' || description_matched_text
                     || '") but no rule places the listed interventions: ' || coalesce(product_names, '')
            when 'cell_product_not_placed'
                then 'a cell product is named that the rules cannot place ("' || unplaced_cell_product || '")'
        end as review_reason
    from verdicts

),

combined as (

    select
        texts.trial_id,
        texts.registry,
        texts.brief_title,
        texts.product_names,
        decided.therapy_class_by_rules,
        coalesce(o_class.value, decided.therapy_class_by_rules) as therapy_class,
        case
            when o_class.value is not null then 'override: ' || o_class.reason
            else decided.therapy_class_rule_applied
        end as therapy_class_rule,
        case
            when o_class.value is not null then 'curator override: ' || o_class.reason
            when decided.review_reason is not null then decided.review_reason
            when decided.therapy_class_by_rules = 'not_stem_cell' and decided.therapy_class_by_rule is null
                then 'the listed interventions name no stem-cell or islet product'
            when decided.verdict = 'description_names_the_kind'
                then 'the interventions say stem cells; the description names which: ' || d_notes.note
            else rule_notes.note
        end as therapy_class_reason,
        o_class.value is not null as has_class_override,
        decided.verdict as classification_case,
        decided.review_reason,
        coalesce(s.msc_source_by_rule, dms.msc_source) as msc_source_by_rule,
        coalesce(s.msc_source_rule, dms.msc_source_rule) as msc_source_rule,
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
    inner join decided using (trial_id)
    left join single_valued s using (trial_id)
    left join rule_notes on rule_notes.rule_id = decided.therapy_class_rule
    left join rule_notes d_notes on 'description ' || d_notes.rule_id = decided.therapy_class_rule_applied
    left join description_msc_source dms using (trial_id)
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
        classification_case,
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
