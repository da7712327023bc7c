"""Pooled proportions per scenario x therapy class (x MSC source, and all MSC sources) x diabetes
type x outcome x definition x follow-up window: one cohort's exact interval, or the random-effects
models (Paule-Mandel with HKSJ and Knapp-Hartung's ad hoc rule; the binomial-normal model when a
cohort has 0 or all events). The rules live in flows/evidence/pooling.py."""

from flows.evidence.pooling import OUTPUT_TYPES, pooled_outcomes
from flows.evidence.relations import typed_relation


def model(dbt, session):
    dbt.config(materialized="table")
    effects = dbt.ref("int_outcome_effects").df()
    return typed_relation(session, pooled_outcomes(effects), OUTPUT_TYPES)
