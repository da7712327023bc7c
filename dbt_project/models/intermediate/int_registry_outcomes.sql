{#- Posted registry outcome values with their group, denominator and a Betacell outcome code
    derived from the measure title (anything unrecognised is 'other'). -#}
with measures as (

    select * from {{ ref('stg_ctgov__result_outcome_measures') }}

),

groups as (

    select * from {{ ref('stg_ctgov__result_outcome_groups') }}

),

measurements as (

    select * from {{ ref('stg_ctgov__result_measurements') }}

),

joined as (

    select
        measurements.*,
        measures.outcome_type,
        measures.outcome_title,
        measures.time_frame,
        measures.param_type,
        measures.dispersion_type,
        measures.unit_of_measure,
        groups.group_title,
        groups.participants_analyzed,
        case
            when regexp_matches(lower(measures.outcome_title), 'insulin[- ]independen') then 'insulin_independence'
            when regexp_matches(lower(measures.outcome_title), 'c[- ]?peptide') and regexp_matches(lower(measures.outcome_title), 'auc|area under') then 'c_peptide_auc'
            when regexp_matches(lower(measures.outcome_title), 'c[- ]?peptide') then 'c_peptide_change'
            when regexp_matches(lower(measures.outcome_title), 'hba1c|glycated ha?emoglobin|a1c') then
                case when regexp_matches(lower(measures.outcome_title), 'change') then 'hba1c_change' else 'hba1c_end' end
            when regexp_matches(lower(measures.outcome_title), 'insulin (dose|requirement|use)') then 'insulin_dose_change'
            when regexp_matches(lower(measures.outcome_title), 'graft (survival|function)') then 'graft_survival'
            when regexp_matches(lower(measures.outcome_title), 'severe hypoglyc') then 'severe_hypoglycemia'
            else 'other'
        end as outcome,
        case
            when regexp_matches(lower(measures.unit_of_measure), 'ng/ml') and regexp_matches(lower(measures.outcome_title), 'c[- ]?peptide') then 'c_peptide_ng_per_ml'
            when regexp_matches(lower(measures.unit_of_measure), 'nmol/l') and regexp_matches(lower(measures.outcome_title), 'c[- ]?peptide') then 'c_peptide_nmol_per_l'
            when regexp_matches(lower(measures.unit_of_measure), 'pmol/l') and regexp_matches(lower(measures.outcome_title), 'c[- ]?peptide') then 'c_peptide_pmol_per_l'
            when regexp_matches(lower(measures.unit_of_measure), 'mmol/mol') then 'hba1c_mmol_per_mol'
            when regexp_matches(lower(measures.outcome_title), 'hba1c|a1c') and regexp_matches(lower(measures.unit_of_measure), '%|percent') then 'hba1c_percent'
            when measures.param_type in ('COUNT_OF_PARTICIPANTS', 'COUNT_OF_UNITS') then 'count'
            else 'as_reported'
        end as unit
    from measurements
    inner join measures using (nct_id, outcome_measure_index)
    left join groups using (nct_id, outcome_measure_index, group_id)

)

select * from joined
