"""Harm rates per therapy class x diabetes type x harm category: the rules and the code are in
flows/evidence/harms.py (imported from the installed ``flows`` package, like the tests do)."""

from flows.evidence.harms import OUTPUT_TYPES, harm_rates
from flows.evidence.relations import typed_relation


def model(dbt, session):
    dbt.config(materialized="table")
    return typed_relation(session, harm_rates(dbt.ref("int_harm_facts").df()), OUTPUT_TYPES)
