"""How the dashboard writes values and colours classes: labels, intervals, dates and the one
class -> colour map (seed therapy_classes, published in marts.dim_therapies).

Pure functions of what the marts hold, so they are unit-tested without a browser. Nothing here
computes a statistic: numbers are only formatted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd

# a class the published map does not know (an older warehouse): visible, never another's colour
UNKNOWN_CLASS_COLOUR = "#000000"
NOT_REPORTED = "NR"


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA/NaT and empty text: not reported. (A NULL from a Parquet column
    arrives as NaN, which is truthy, so `if value:` is not a test for it.)"""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def text_or(value: Any, default: str = "") -> str:
    return default if is_missing(value) else str(value)


def therapy_name(therapy_label: Any, msc_source: Any) -> str:
    """'Mesenchymal stromal cells · umbilical_cord'; the MSC source only when there is one
    (non-MSC rows carry NULL) and not for the all-sources row, whose label says so already."""
    name = text_or(therapy_label, "(unlabelled class)")
    source = text_or(msc_source)
    if source and source != "all sources":
        name += f" · {source.replace('_', ' ')}"
    return name


def cohort_label(study_id: Any, arms: Iterable[Any]) -> str:
    """'REICHMAN2025_ZIMISLECEL · full dose (parts B+C)': the report used and its arms."""
    named = [text_or(arm) for arm in arms]
    named = sorted({arm for arm in named if arm})
    study = text_or(study_id, "(no study id)")
    return f"{study} · {' + '.join(named)}" if named else study


def proportion(value: Any, digits: int = 2) -> str:
    return "–" if is_missing(value) else f"{float(value):.{digits}f}"


def range_text(low: Any, high: Any, digits: int = 2) -> str:
    """'0.03–0.98', or '' when either bound is missing (no interval, e.g. fewer than 3 cohorts)."""
    if is_missing(low) or is_missing(high):
        return ""
    return f"{proportion(low, digits)}–{proportion(high, digits)}"


def interval_text(estimate: Any, low: Any, high: Any, digits: int = 2) -> str:
    """'0.45 (0.36–0.54)'; an estimate without an interval stands alone; nothing is 'NR'."""
    if is_missing(estimate):
        return NOT_REPORTED
    bounds = range_text(low, high, digits)
    return f"{proportion(estimate, digits)} ({bounds})" if bounds else proportion(estimate, digits)


def count_text(events: Any, participants: Any) -> str:
    if is_missing(events) or is_missing(participants):
        return NOT_REPORTED
    return f"{int(events)}/{int(participants)}"


def date_text(value: Any) -> str:
    """A date as a date ('2010-08-01'), never with a midnight time; '' when unknown."""
    if is_missing(value):
        return ""
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def timestamp_text(value: Any) -> str:
    """An ISO timestamp ('2026-12-05T21:42:36.349380+00:00') to the minute, in UTC."""
    if is_missing(value):
        return ""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def class_colours(therapies: pd.DataFrame) -> dict[str, str]:
    """therapy_class -> colour, from marts.dim_therapies (one row per class and MSC source, one
    colour per class). Two classes sharing a colour is an error in the seed, not a choice."""
    pairs = therapies[["therapy_class", "colour"]].drop_duplicates()
    per_class = pairs.groupby("therapy_class")["colour"].nunique()
    if (per_class > 1).any():
        raise ValueError(f"classes with several colours: {sorted(per_class[per_class > 1].index)}")
    colours = dict(zip(pairs["therapy_class"], pairs["colour"], strict=True))
    shared = pd.Series(colours).duplicated(keep=False)
    if shared.any():
        raise ValueError(f"classes sharing a colour: {sorted(shared[shared].index)}")
    return colours


def class_labels(therapies: pd.DataFrame) -> dict[str, str]:
    """therapy_class -> its display label, without an MSC source (marts.dim_therapies)."""
    pairs = therapies[["therapy_class", "class_label"]].drop_duplicates()
    return dict(zip(pairs["therapy_class"], pairs["class_label"], strict=True))


def wrap_label(text: str, width: int = 14) -> str:
    """A label on several short lines (plotly's <br>), for axis labels that sit side by side."""
    lines: list[str] = []
    words = []
    for word in text.split():  # a long hyphenated word breaks after its hyphens
        parts = word.split("-")
        words += ([f"{part}-" for part in parts[:-1]] + parts[-1:]) if len(word) > width else [word]
    for word in words:
        if lines and lines[-1].endswith("-") and len(lines[-1]) + len(word) <= width:
            lines[-1] += word
        elif lines and not lines[-1].endswith("-") and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "<br>".join(lines)


def colour_of(therapy_class: Any, colours: Mapping[str, str]) -> str:
    return colours.get(text_or(therapy_class), UNKNOWN_CLASS_COLOUR)


def colours_by_label(colours: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    """The same colours keyed by the classes' display labels (for chart legends)."""
    return {labels.get(c, c): colour for c, colour in colours.items()}


PHASE_ORDER = ("EARLY_PHASE1", "PHASE1", "PHASE1/PHASE2", "PHASE2", "PHASE2/PHASE3", "PHASE3",
               "PHASE4", "NA")


def phase_rank(phase: str) -> tuple[int, str]:
    """Phases in trial order; 'not applicable' and anything unregistered after them."""
    return (PHASE_ORDER.index(phase) if phase in PHASE_ORDER else len(PHASE_ORDER), phase)


def phase_colours(phases: list[str]) -> dict[str, str]:
    """Shades of one hue, darker as the phase advances (never a therapy class's colour);
    phases that are not phases (NA, not registered) in greys."""
    from plotly.colors import sample_colorscale

    staged = [p for p in phases if p in PHASE_ORDER[:-1]]
    shades = sample_colorscale("Blues", [0.3 + 0.7 * i / max(len(staged) - 1, 1)
                                         for i in range(len(staged))]) if staged else []
    colours = dict(zip(staged, shades, strict=True))
    greys = iter(("#8c8c8c", "#c8c8c8", "#e0e0e0", "#a0a0a0"))
    for phase in phases:
        if phase not in colours:
            colours[phase] = next(greys, "#b0b0b0")
    return colours


def enrollment_text(count: Any, kind: Any) -> str:
    """'44 actual', '57 estimated', '21' (type not given), '' (not reported)."""
    if is_missing(count):
        return ""
    return f"{int(count)} {text_or(kind).lower()}".strip()
