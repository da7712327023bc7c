{#- Outcome facts with everything pooling needs, decided by stated rules only:
    - therapy class: the registry classification of the linked trial, unless that record was too
      thin to classify; else the curator's product label;
    - outcome definition: the sheet's column, else the reviewed mapping of the as-reported text
      (seed outcome_definition_map, study-specific first); with its population (all patients or a
      subgroup) and whether the timepoint is fixed or "last follow-up";
    - follow-up window (seed followup_windows) from the timepoint; "last follow-up" (the map's
      timepoint_kind, or a mean or median follow-up) is its own window; a duration never has one;
    - counts used: reported events, else events derived from a proportion and its n (flagged);
      a definition pooled as the complement of another (graft failure -> functioning graft)
      is converted, n - events (flagged);
    - cohort: the registry trial where known, shared by reports of the same cohort (seed
      cohort_overlaps, relation same_cohort); reports that may overlap another (relation
      suspected) are flagged and set aside by default. -#}
with facts as (

    select * from {{ ref('int_outcome_facts') }}

),

classification as (

    select trial_id, therapy_class, msc_source from {{ ref('int_trial_classification') }}
    -- a registry record too thin to classify never overrides the curator's label
    where therapy_class not in ('needs_review', 'unclassified')

),

labels as (

    select * from {{ ref('published_therapy_labels') }}

),

definition_map as (

    select * from {{ ref('outcome_definition_map') }}

),

definitions as (

    select * from {{ ref('outcome_definitions') }}

),

windows as (

    select * from {{ ref('followup_windows') }}

),

overlap_pairs as (

    select * from {{ ref('cohort_overlaps') }}

),

study_trials as (

    select study_id, max(trial_id) filter (where trial_id is not null) as trial_id
    from facts
    group by study_id

),

same_cohort as (

    -- both reports of a same-cohort pair take the registry trial of whichever has one
    select overlap_pairs.study_id, coalesce(a.trial_id, b.trial_id, 'study:' || overlap_pairs.overlaps_with) as cohort_id
    from overlap_pairs
    left join study_trials a on a.study_id = overlap_pairs.study_id
    left join study_trials b on b.study_id = overlap_pairs.overlaps_with
    where relation = 'same_cohort'
    union all
    select overlap_pairs.overlaps_with, coalesce(a.trial_id, b.trial_id, 'study:' || overlap_pairs.overlaps_with)
    from overlap_pairs
    left join study_trials a on a.study_id = overlap_pairs.study_id
    left join study_trials b on b.study_id = overlap_pairs.overlaps_with
    where relation = 'same_cohort'

),

cohorts as (

    select
        study_trials.study_id,
        coalesce(same_cohort.cohort_id, study_trials.trial_id, 'study:' || study_trials.study_id) as cohort_id
    from study_trials
    left join same_cohort using (study_id)

),

suspected as (

    select study_id,
           list(overlaps_with order by overlaps_with) as suspected_overlap_with,
           string_agg(reason, '; ') as overlap_reason
    from overlap_pairs
    where relation = 'suspected'
    group by study_id

),

mapped as (

    select
        facts.*,
        coalesce(facts.outcome_definition, by_study.definition_id, generic.definition_id) as definition_id,
        case when facts.outcome_definition is not null then 'sheet'
             when coalesce(by_study.definition_id, generic.definition_id) is not null then 'reviewed_mapping'
        end as definition_source,
        coalesce(case when facts.outcome_definition is not null then 'all' end,
                 by_study.population, generic.population, 'all') as population,
        coalesce(by_study.timepoint_kind, generic.timepoint_kind, 'fixed') as timepoint_kind
    from facts
    left join definition_map by_study
        on by_study.study_id = facts.study_id and by_study.outcome = facts.outcome
        and coalesce(by_study.text_as_reported, '') = coalesce(facts.unit_as_reported, '')
    left join definition_map generic
        on generic.study_id is null and generic.outcome = facts.outcome
        and coalesce(generic.text_as_reported, '') = coalesce(facts.unit_as_reported, '')

),

final as (

    select
        mapped.*,
        coalesce(classification.therapy_class, labels.therapy_class, 'other_stem_cell') as therapy_class,
        case when classification.therapy_class is not null then classification.msc_source
             else labels.msc_source end as msc_source,
        case when classification.therapy_class is not null then 'registry_classification'
             when labels.therapy_class is not null then 'curator_label'
             else 'unmapped' end as therapy_class_source,
        definitions.is_poolable is true as is_definition_poolable,
        coalesce(definitions.complement_of, mapped.definition_id) as pooled_definition_id,
        definitions.complement_of is not null as is_complement_converted,
        -- a follow-up that differs between patients (last follow-up, a mean or median follow-up)
        -- is not a fixed timepoint; a duration has no timepoint_months, so it never gets a window
        case
            when mapped.timepoint_kind = 'last_followup' then 'last_followup'
            when mapped.followup_basis in ('mean', 'median') then 'last_followup'
            else windows.window_id
        end as window_id,
        mapped.n_events is null and mapped.measure = 'proportion' and mapped.value is not null
            and mapped.n_analyzed is not null as is_count_derived,
        -- the counts pooling uses: reported, else derived from the proportion; complemented
        case
            when mapped.measure <> 'proportion' then null
            when definitions.complement_of is not null
                then mapped.n_analyzed - coalesce(mapped.n_events, cast(round(mapped.value * mapped.n_analyzed) as integer))
            else coalesce(mapped.n_events, cast(round(mapped.value * mapped.n_analyzed) as integer))
        end as events_used,
        cohorts.cohort_id,
        suspected.suspected_overlap_with,
        suspected.overlap_reason,
        suspected.study_id is not null as is_set_aside_overlap,
        coalesce(regexp_matches(lower(mapped.arm), '{{ control_arm_pattern() }}'), false) as is_control_arm,
        mapped.verification_status = 'no' as is_unverified,
        coalesce(starts_with(lower(mapped.randomized), 'yes'), false) as is_randomised
    from mapped
    left join classification on classification.trial_id = mapped.trial_id
    left join labels on labels.therapy_class_as_reported = mapped.therapy_class_as_reported
    left join definitions on definitions.definition_id = mapped.definition_id
    left join windows
        on mapped.timepoint_months > cast(windows.months_above as double)
        and (windows.months_up_to is null or mapped.timepoint_months <= cast(windows.months_up_to as double))
        and windows.months_above is not null
    left join cohorts on cohorts.study_id = mapped.study_id
    left join suspected on suspected.study_id = mapped.study_id

)

select * from final
