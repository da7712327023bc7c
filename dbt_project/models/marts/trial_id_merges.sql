{{ config(materialized='table') }}

{#- Every cross-registry merge with its rule, score and evidence, plus the near misses
    (candidates below the threshold, and curated suspected pairs) that were NOT merged. -#}
with merges as (

    select * from {{ ref('int_trial_id_merges') }}

),

curated as (

    select * from {{ ref('known_duplicate_candidates') }}

)

select
    merges.merged_id,
    merges.canonical_trial_id,
    merges.rule,
    cast(merges.score as double) as score,
    merges.is_merged,
    merges.evidence,
    curated.note as curator_note
from merges
left join curated
    on curated.trial_id_a = merges.merged_id and curated.trial_id_b = merges.canonical_trial_id
