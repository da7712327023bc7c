{#-
  Records of one trial across registries. Rule 1 (secondary_id): an ICTRP record that is the
  same NCT id, or that names an NCT id in its secondary ids, or whose id an NCT record names, is
  merged into that NCT record. Rule 2 (title_sponsor_date), only when rule 1 finds nothing:
  score = 0.6 x title token Jaccard + 0.2 x sponsor Jaro-Winkler + 0.2 x (start/registration
  dates within 365 days); merged when score >= 0.8 and title Jaccard >= 0.6. Candidate pairs
  scoring >= 0.4, and curated suspected pairs, are kept as not merged so near misses are visible.
-#}
with ids as (

    select * from {{ ref('int_trial_registry_ids') }}

),

ictrp as (

    select * from {{ ref('stg_ictrp__trials') }}

),

ctgov as (

    select s.nct_id, s.brief_title, s.official_title, s.start_date, s.study_first_post_date,
           sp.sponsor_name
    from {{ ref('stg_ctgov__studies') }} s
    left join {{ ref('stg_ctgov__sponsors') }} sp on sp.nct_id = s.nct_id and sp.sponsor_role = 'lead_sponsor'

),

by_secondary_id as (

    -- the ICTRP record declares the NCT id (or is it)
    select ids.record_id as merged_id, ids.declared_id as canonical_trial_id,
           'secondary_id' as rule, 1.0 as score,
           'ICTRP record ' || ids.record_id || ' lists ' || ids.declared_id as evidence
    from ids
    inner join ctgov on ctgov.nct_id = ids.declared_id
    where ids.record_registry = 'ictrp' and ids.record_id <> ids.declared_id
    union all
    select ictrp.trial_id, ids.record_id, 'secondary_id', 1.0,
           'ClinicalTrials.gov record ' || ids.record_id || ' lists ' || ictrp.trial_id
    from ids
    inner join ictrp on ictrp.trial_id = ids.declared_id
    where ids.record_registry = 'ClinicalTrials.gov' and ids.record_id <> ids.declared_id
    union all
    select ictrp.trial_id, ictrp.trial_id, 'same_id', 1.0, 'ICTRP carries the ClinicalTrials.gov record itself'
    from ictrp where ictrp.registry = 'ClinicalTrials.gov'

),

tokens as (

    select 'ictrp' as side, trial_id as record_id,
           list_distinct(list_filter(regexp_split_to_array(lower(coalesce(title, '')), '[^a-z0-9]+'), t -> len(t) >= 4)) as title_tokens
    from ictrp
    where trial_id not in (select merged_id from by_secondary_id)
    union all
    select 'ctgov', nct_id,
           list_distinct(list_filter(regexp_split_to_array(lower(concat_ws(' ', brief_title, official_title)), '[^a-z0-9]+'), t -> len(t) >= 4))
    from ctgov

),

token_index as (

    select side, record_id, unnest(title_tokens) as token from tokens

),

blocked_pairs as (

    -- only pairs sharing at least two title words are scored (keeps this linear at scale)
    select a.record_id as ictrp_id, b.record_id as nct_id
    from token_index a
    inner join token_index b on a.token = b.token and a.side = 'ictrp' and b.side = 'ctgov'
    group by 1, 2
    having count(*) >= 2

),

curated_pairs as (

    select trial_id_a as ictrp_id, trial_id_b as nct_id from {{ ref('known_duplicate_candidates') }}
    where trial_id_b like 'NCT%'

),

scored as (

    select
        pairs.ictrp_id,
        pairs.nct_id,
        coalesce(len(list_intersect(ta.title_tokens, tb.title_tokens))::double
                 / nullif(len(list_distinct(list_concat(ta.title_tokens, tb.title_tokens))), 0), 0) as title_similarity,
        coalesce(jaro_winkler_similarity(lower(ictrp.primary_sponsor), lower(ctgov.sponsor_name)), 0) as sponsor_similarity,
        abs(date_diff('day', coalesce(ictrp.enrollment_start_date, ictrp.registration_date),
                             coalesce(ctgov.start_date, ctgov.study_first_post_date))) as date_gap_days
    from (select * from blocked_pairs union select * from curated_pairs) pairs
    inner join ictrp on ictrp.trial_id = pairs.ictrp_id
    inner join ctgov on ctgov.nct_id = pairs.nct_id
    left join tokens ta on ta.side = 'ictrp' and ta.record_id = pairs.ictrp_id
    left join tokens tb on tb.side = 'ctgov' and tb.record_id = pairs.nct_id
    where pairs.ictrp_id not in (select merged_id from by_secondary_id)

),

by_similarity as (

    select
        ictrp_id as merged_id,
        nct_id as canonical_trial_id,
        'title_sponsor_date' as rule,
        round(0.6 * title_similarity + 0.2 * sponsor_similarity
              + 0.2 * case when date_gap_days <= 365 then 1 else 0 end, 4) as score,
        'title ' || round(title_similarity, 2) || ', sponsor ' || round(sponsor_similarity, 2)
            || ', dates ' || coalesce(date_gap_days || ' days apart', 'not comparable') as evidence,
        title_similarity
    from scored

),

final as (

    select merged_id, canonical_trial_id, rule, score, evidence, true as is_merged
    from by_secondary_id
    union all
    select merged_id, canonical_trial_id, rule, score,
           evidence || case when score >= 0.8 and title_similarity >= 0.6 then ''
                            else ' (below the merge threshold: score >= 0.8 and title >= 0.6)' end,
           score >= 0.8 and title_similarity >= 0.6
    from by_similarity
    where score >= 0.4
       or exists (select 1 from curated_pairs c
                  where c.ictrp_id = by_similarity.merged_id and c.nct_id = by_similarity.canonical_trial_id)

),

-- the best-scoring candidate merges; candidates tied at the top score are ambiguous and none
-- merges (nothing is decided by the order of ids); outscored candidates are dropped
ranked as (

    select
        final.*,
        max(score) filter (where is_merged) over (partition by merged_id) as top_score,
        count(*) filter (where is_merged) over (partition by merged_id, score) as tied
    from final

),

resolved as (

    select
        merged_id,
        canonical_trial_id,
        rule,
        score,
        case when is_merged and score = top_score and tied > 1
             then evidence || ' (ambiguous: ' || tied || ' records match equally; not merged)'
             else evidence end as evidence,
        is_merged and score = top_score and tied = 1 as is_merged
    from ranked
    where not is_merged or score = top_score

)

select * from resolved
