{#- Milestones per period and group; numSubjects arrives as a string. -#}
with studies as (

    select nct_id, json_transform(results_section->'participantFlowModule',
        '{"groups":[{"id":"VARCHAR","title":"VARCHAR"}],"periods":[{"title":"VARCHAR","milestones":[{"type":"VARCHAR","achievements":[{"groupId":"VARCHAR","numSubjects":"VARCHAR"}]}]}]}') as flow
    from {{ ref('base_ctgov__latest_studies') }}
    where results_section is not null

),

periods as (

    select nct_id, flow.groups as groups, unnest(flow.periods) as period, generate_subscripts(flow.periods, 1) as period_index
    from studies

),

milestones as (

    select nct_id, groups, period_index, period.title as period_title, unnest(period.milestones) as milestone
    from periods

),

achievements as (

    select nct_id, groups, period_index, period_title, upper(trim(milestone.type)) as milestone_type,
           unnest(milestone.achievements) as achievement
    from milestones

)

select
    nct_id,
    period_index,
    period_title,
    milestone_type,
    achievement.groupId as group_id,
    list_filter(groups, g -> g.id = achievement.groupId)[1].title as group_title,
    try_cast(achievement.numSubjects as integer) as participant_count
from achievements
