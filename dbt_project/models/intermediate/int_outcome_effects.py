"""One effect per outcome fact: the proportion with its exact Clopper-Pearson 95 % interval, or
the reported value; its definition, window and the follow-up it stands for, and whether and why
it can enter a pooled estimate. The rules live in flows/evidence/effects.py."""

from flows.evidence.effects import OUTPUT_TYPES, outcome_effects
from flows.evidence.relations import typed_relation


def model(dbt, session):
    dbt.config(materialized="table")
    facts = dbt.ref("int_outcomes_classified").df()
    return typed_relation(session, outcome_effects(facts), OUTPUT_TYPES)
