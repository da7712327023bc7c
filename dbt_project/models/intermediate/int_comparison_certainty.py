"""The automatic GRADE-style certainty of every pooled row (one judgement per domain, with its
reason), from the row's estimate and the cohorts behind it. The rules live in
flows/evidence/certainty.py (README, "Certainty of the evidence"); therapy_outcome_comparison
joins this beside each estimate."""

import math

import pandas as pd

from flows.evidence.certainty import OUTPUT_TYPES, rate_comparisons


def missing(value):
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def records(frame):
    """Rows as dicts, pandas' missing values as None."""
    return [{k: None if missing(v) else v for k, v in row.items()}
            for row in frame.to_dict("records")]


def model(dbt, session):
    dbt.config(materialized="table")
    pooled = dbt.ref("int_pooled_outcomes").df()
    effects = dbt.ref("int_outcome_effects").df()
    sheet_rows = dbt.ref("stg_outcomes__published_outcomes").df()
    definitions = dbt.ref("outcome_definitions").df()

    # a sheet row's fact id is 'publication:' || outcome_row_id (int_outcome_facts); registry
    # facts carry no risk-of-bias judgement
    judged = {f"publication:{r['outcome_row_id']}": (r["risk_of_bias"], r["risk_of_bias_tool"])
              for r in records(sheet_rows[["outcome_row_id", "risk_of_bias",
                                           "risk_of_bias_tool"]])}
    facts = {}
    for fact in records(effects[effects["is_poolable"].astype(bool)]):
        rob, tool = judged.get(fact["outcome_fact_id"], (None, None))
        facts[fact["outcome_fact_id"]] = {**fact, "risk_of_bias": rob, "risk_of_bias_tool": tool}
    headline = {r["definition_id"]: (r["label"], str(r["is_headline"]).lower() == "true")
                for r in records(definitions)}
    rows = rate_comparisons(records(pooled), facts, headline)

    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
    if not rows:
        nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
        return session.sql(f"select {nulls} where false")
    frame = pd.DataFrame(rows, columns=list(OUTPUT_TYPES)).astype(object)
    return session.from_df(frame.where(pd.notna(frame), None)).select(casts)
