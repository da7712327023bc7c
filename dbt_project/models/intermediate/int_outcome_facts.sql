{#- Outcome facts from the curated sheets and from registry results sections, one row per
    source x trial or study x arm x outcome x timepoint (x class/category for registry values).
    Values keep their text as reported; value_normalised converts C-peptide to nmol/L and HbA1c
    to % (changes without the affine offset). A registry count of participants carries its own
    group's participants analysed (n_analyzed): a proportion is made from it only over that.
    Lower and upper limits are a confidence interval (ci_low, ci_high) only when the measure's
    dispersion is one; a range (full or inter-quartile) is range_low / range_high. Rows of a
    quarantined record or sheet study (int_quarantined_records) are left out here.
    A sheet's trial id that is not a registry id is looked up in seed trial_aliases (else NULL).
    The follow-up each sheet fact stands for is recorded from its timepoint and follow-up text:
    followup_basis says what the months are (a fixed timepoint, a mean or median follow-up, a
    range, or a duration: time spent in a state, which is never a follow-up and is kept in
    duration_months, out of timepoint_months); followup_months_min/max give the follow-up
    range (the timepoint itself for a fixed timepoint, else the range the report gives). -#}
with quarantined as (

    select source, record_id from {{ ref('int_quarantined_records') }}

),

published as (

    select * from {{ ref('stg_outcomes__published_outcomes') }} sheet_rows
    where not exists (select 1 from quarantined q
                      where q.source = 'outcome_sheet' and q.record_id = sheet_rows.study_id)

),

aliases as (

    select alias, trial_id from {{ ref('trial_aliases') }}

),

published_followup as (

    select
        published.*,
        aliases.trial_id as alias_trial_id,
        case
            when published.timepoint_as_reported ilike '%duration%' then 'duration'
            when regexp_matches(published.timepoint_as_reported, '^\s*~?[0-9.]+\s*[-–]\s*[0-9.]+') then 'range'
            when published.timepoint_months is not null and published.timepoint_as_reported ilike '%median%' then 'median'
            when published.timepoint_months is not null and published.timepoint_as_reported ilike '%mean%' then 'mean'
            when published.timepoint_months is not null then 'timepoint'
        end as timepoint_basis,
        try_cast(nullif(regexp_extract(published.timepoint_as_reported, '^\s*~?([0-9.]+)\s*[-–]\s*([0-9.]+)', 1), '') as double) as timepoint_range_low,
        try_cast(nullif(regexp_extract(published.timepoint_as_reported, '^\s*~?([0-9.]+)\s*[-–]\s*([0-9.]+)', 2), '') as double) as timepoint_range_high,
        try_cast(nullif(regexp_extract(published.followup_as_reported, '([0-9.]+)\s*[-–]\s*([0-9.]+)', 1), '') as double) as followup_range_low,
        try_cast(nullif(regexp_extract(published.followup_as_reported, '([0-9.]+)\s*[-–]\s*([0-9.]+)', 2), '') as double) as followup_range_high,
        case when published.followup_as_reported ilike '%median%' then 'median'
             when published.followup_as_reported ilike '%mean%' then 'mean' end as followup_average
    from published
    left join aliases on aliases.alias = published.trial_id_as_curated

),

published_facts as (

    select
        published_followup.*,
        coalesce(timepoint_basis,
                 case when followup_average is not null and followup_months is not null then followup_average
                      when followup_range_low is not null then 'range'
                      when followup_months is not null then 'study_followup' end) as followup_basis
    from published_followup

),

registry as (

    select * from {{ ref('int_registry_outcomes') }} registry_values
    where not exists (select 1 from quarantined q
                      where q.source = 'ctgov' and q.record_id = registry_values.nct_id)

),

conversions as (

    select * from {{ ref('unit_conversions') }}

),

studies as (

    select nct_id, retrieved_at from {{ ref('stg_ctgov__studies') }}

),

from_publications as (

    select
        'publication:' || outcome_row_id                          as outcome_fact_id,
        'publication'                                             as source,
        study_id,
        coalesce(trial_id, alias_trial_id)                        as trial_id,
        publication_id,
        pmid,
        doi,
        arm,
        cast(null as varchar)                                     as group_id,
        outcome,
        outcome_definition,
        cast(null as varchar)                                     as outcome_title,
        case when timepoint_basis = 'duration' then null else timepoint_months end as timepoint_months,
        timepoint_as_reported                                     as timepoint_text,
        followup_basis,
        case when followup_basis in ('timepoint', 'mean', 'median') and timepoint_basis is not null then timepoint_months
             when followup_basis in ('mean', 'median', 'study_followup') then followup_months
        end                                                       as followup_months,
        case when timepoint_basis = 'timepoint' then timepoint_months
             when timepoint_basis = 'range' then timepoint_range_low
             else coalesce(followup_range_low, followup_months) end as followup_months_min,
        case when timepoint_basis = 'timepoint' then timepoint_months
             when timepoint_basis = 'range' then timepoint_range_high
             else coalesce(followup_range_high, followup_months) end as followup_months_max,
        case when timepoint_basis = 'duration' then timepoint_months end as duration_months,
        measure,
        cast(null as varchar)                                     as param_type,
        value,
        coalesce(value_as_reported, cast(value as varchar))       as value_text,
        unit,
        unit_as_reported,
        cast(null as varchar)                                     as dispersion_type,
        cast(null as double)                                      as dispersion_value,
        ci_low,
        ci_high,
        cast(null as double)                                      as range_low,
        cast(null as double)                                      as range_high,
        n_events,
        coalesce(n_total, n_arm)                                  as n_analyzed,
        n_arm,
        verification_status,
        diabetes_type,
        therapy_class_as_reported,
        design,
        randomized,
        publication_year,
        citation_quality,
        outcome_row_id                                            as source_record_id,
        'outcome sheet ' || sheet_file || ' row ' || source_row   as source_location,
        -- the source of record: the citation of record (DOI, else PubMed) before any page
        record_url                                                as source_url,
        list_filter(list_prepend(source_url, other_source_urls),
                    url -> url is not null and lower(url) <> lower(record_url)) as other_source_urls,
        loaded_at                                                 as retrieved_at
    from (
        select
            *,
            -- (a DOI is compared in lower case; the sheet's own spelling of its link is kept)
            coalesce(case when doi is not null and lower(source_url) = 'https://doi.org/' || doi then source_url
                          when doi is not null then 'https://doi.org/' || doi
                          when pmid is not null then 'https://pubmed.ncbi.nlm.nih.gov/' || pmid || '/' end,
                     source_url) as record_url
        from published_facts
    )

),

from_registry as (

    select
        'registry:' || nct_id || ':om' || outcome_measure_index || ':c' || class_index || ':k' || category_index || ':' || group_id as outcome_fact_id,
        'registry_results'                                        as source,
        nct_id                                                    as study_id,
        nct_id                                                    as trial_id,
        cast(null as varchar)                                     as publication_id,
        cast(null as varchar)                                     as pmid,
        cast(null as varchar)                                     as doi,
        group_title                                               as arm,
        group_id,
        outcome,
        cast(null as varchar)                                     as outcome_definition,
        outcome_title || coalesce(' / ' || class_title, '') || coalesce(' / ' || category_title, '') as outcome_title,
        cast(null as double)                                      as timepoint_months,
        time_frame                                                as timepoint_text,
        cast(null as varchar)                                     as followup_basis,
        cast(null as double)                                      as followup_months,
        cast(null as double)                                      as followup_months_min,
        cast(null as double)                                      as followup_months_max,
        cast(null as double)                                      as duration_months,
        case param_type
            when 'MEAN' then 'mean' when 'LEAST_SQUARES_MEAN' then 'mean'
            when 'MEDIAN' then 'median'
            when 'COUNT_OF_PARTICIPANTS' then 'count' when 'COUNT_OF_UNITS' then 'count'
            else 'other'
        end                                                       as measure,
        param_type,
        value_numeric                                             as value,
        value_text || coalesce(' (' || comment || ')', '')        as value_text,
        unit,
        unit_of_measure                                           as unit_as_reported,
        dispersion_type,
        spread_numeric                                            as dispersion_value,
        -- 95% Confidence Interval (as posted) or CONFIDENCE_95 (the API enum)
        case when dispersion_type like '%CONFIDENCE%' then lower_limit end as ci_low,
        case when dispersion_type like '%CONFIDENCE%' then upper_limit end as ci_high,
        case when coalesce(dispersion_type, '') not like '%CONFIDENCE%' then lower_limit end as range_low,
        case when coalesce(dispersion_type, '') not like '%CONFIDENCE%' then upper_limit end as range_high,
        case when param_type = 'COUNT_OF_PARTICIPANTS' then cast(value_numeric as integer) end as n_events,
        participants_analyzed                                     as n_analyzed,
        cast(null as integer)                                     as n_arm,
        'registry_posted'                                         as verification_status,
        cast(null as varchar)                                     as diabetes_type,
        cast(null as varchar)                                     as therapy_class_as_reported,
        cast(null as varchar)                                     as design,
        cast(null as varchar)                                     as randomized,
        cast(null as integer)                                     as publication_year,
        'registry'                                                as citation_quality,
        nct_id || ' outcomeMeasuresModule[' || outcome_measure_index || '] ' || group_id as source_record_id,
        'ClinicalTrials.gov resultsSection.outcomeMeasuresModule' as source_location,
        'https://clinicaltrials.gov/study/' || nct_id || '?tab=results' as source_url,
        cast([] as varchar[])                                     as other_source_urls,
        studies.retrieved_at
    from registry
    left join studies using (nct_id)

),

unioned as (

    select * from from_publications
    union all
    select * from from_registry

),

normalised as (

    select
        unioned.*,
        case
            when unioned.value is null then null
            when conversions.from_unit is null then unioned.value
            when unioned.measure = 'mean_change' then unioned.value * conversions.factor
            else unioned.value * conversions.factor + conversions.offset_value
        end as value_normalised,
        coalesce(conversions.to_unit, unioned.unit) as unit_normalised
    from unioned
    left join conversions on conversions.from_unit = unioned.unit

)

select * from normalised
