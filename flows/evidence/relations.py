"""Typed output for the dbt Python models: explicit column types, also for an empty result (an
untyped empty frame breaks the models' enforced contracts downstream)."""

from __future__ import annotations

import pandas as pd


def typed_relation(session, frame: pd.DataFrame, output_types: dict[str, str]):
    """``frame`` as a DuckDB relation with exactly the columns and types of ``output_types``."""
    if frame.empty:
        nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in output_types.items())
        return session.sql(f"select {nulls} where false")
    frame = frame[list(output_types)].astype(object)
    frame = frame.where(pd.notna(frame), None)
    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in output_types.items())
    return session.from_df(frame).select(casts)
