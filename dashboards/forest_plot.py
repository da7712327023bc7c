"""The Therapy comparison page's forest plot, drawn as forest plots are read.

Per comparison row (one therapy class, or MSC source, in one scenario): a square per cohort at
its proportion, its area proportional to the cohort's weight, with its 95 % CI as a line; one
diamond spanning the pooled estimate's CI (none for a single cohort, which is not pooled); the
95 % prediction interval as a line beneath; k, N and the numbers beside. Every number is read
from marts.therapy_outcome_comparison (the cohort arrays) and marts.outcome_effects (which
report and arms a cohort used): nothing is computed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from dashboards.presentation import (
    cohort_label,
    colour_of,
    count_text,
    interval_text,
    is_missing,
    range_text,
    therapy_name,
)

ROW_HEIGHT = 30
SQUARE_MIN, SQUARE_MAX = 7, 22  # marker sizes (px) of the smallest and the whole weight
DIAMOND_HALF_HEIGHT = 0.32
REFERENCE_LINES = ((0.0, "0: none"), (0.5, "0.5: half"), (1.0, "1: all participants"))
INK = "#333333"


@dataclass
class Line:
    """One row of the plot: its label on the left and its numbers on the right."""

    label: str
    numbers: str


def square_size(weight: float) -> float:
    """A marker size whose area grows with the weight (size ~ sqrt(weight))."""
    weight = min(max(float(weight), 0.0), 1.0)
    return SQUARE_MIN + (SQUARE_MAX - SQUARE_MIN) * math.sqrt(weight)


def cohort_lines(row: pd.Series, effects: pd.DataFrame) -> list[dict]:
    """The cohorts of one comparison row, in the mart's order, with the report and arms used."""
    facts = effects[effects["outcome_fact_id"].isin(list(row["outcome_fact_ids"]))]
    out = []
    for i, cohort_id in enumerate(row["cohort_ids"]):
        used = facts[facts["cohort_id"] == cohort_id]
        study = used["study_id"].iloc[0] if not used.empty else cohort_id
        out.append({
            "label": cohort_label(study, used["arm"]),
            "events": row["cohort_events"][i], "participants": row["cohort_participants"][i],
            "estimate": row["cohort_estimates"][i], "ci_low": row["cohort_ci_low"][i],
            "ci_high": row["cohort_ci_high"][i], "weight": row["cohort_weights"][i],
        })
    return out


def summary_numbers(row: pd.Series) -> str:
    k, n = int(row["k_cohorts"]), int(row["n_participants"])
    numbers = f"k={k} · N={n} · {interval_text(row['estimate'], row['ci_low'], row['ci_high'])}"
    if "certainty" in row and not is_missing(row["certainty"]):
        numbers += f"<br>certainty {row['certainty']} (automatic)"  # a line of its own: fits
    return numbers


def forest_figure(rows: pd.DataFrame, effects: pd.DataFrame, colours: dict[str, str],
                  axis_title: str) -> go.Figure:
    fig = go.Figure()
    lines: list[Line] = []

    def next_y() -> int:
        return len(lines)

    for _, row in rows.iterrows():
        colour = colour_of(row["therapy_class"], colours)
        name = therapy_name(row["therapy_label"], row["msc_source"])
        for cohort in cohort_lines(row, effects):
            y = next_y()
            lines.append(Line(cohort["label"],
                              f"{count_text(cohort['events'], cohort['participants'])} · "
                              f"weight {cohort['weight']:.0%}"))
            fig.add_trace(go.Scatter(
                x=[cohort["ci_low"], cohort["ci_high"]], y=[y, y], mode="lines",
                line={"color": colour, "width": 2}, showlegend=False, hoverinfo="skip"))
            fig.add_trace(go.Scatter(
                x=[cohort["estimate"]], y=[y], mode="markers", showlegend=False,
                marker={"symbol": "square", "size": square_size(cohort["weight"]),
                        "color": colour, "line": {"color": INK, "width": 1}},
                hovertemplate=f"{cohort['label']}<br>"
                              f"{interval_text(cohort['estimate'], cohort['ci_low'], cohort['ci_high'])}"
                              "<extra></extra>"))
        y = next_y()
        pooled = int(row["k_cohorts"]) > 1
        lines.append(Line(f"<b>{name}</b>" + (" — pooled" if pooled
                                              else " — 1 cohort, not pooled"),
                          summary_numbers(row)))
        if pooled:
            fig.add_trace(go.Scatter(
                x=[row["ci_low"], row["estimate"], row["ci_high"], row["estimate"], row["ci_low"]],
                y=[y, y - DIAMOND_HALF_HEIGHT, y, y + DIAMOND_HALF_HEIGHT, y],
                mode="lines", fill="toself", fillcolor=colour, line={"color": INK, "width": 1},
                showlegend=False,
                hovertemplate=f"{name}: {interval_text(row['estimate'], row['ci_low'], row['ci_high'])}"
                              "<extra>pooled</extra>"))
        if not is_missing(row["pi_low"]) and not is_missing(row["pi_high"]):
            y = next_y()
            lines.append(Line("95 % prediction interval", range_text(row["pi_low"], row["pi_high"])))
            fig.add_trace(go.Scatter(
                x=[row["pi_low"], row["pi_high"]], y=[y, y], mode="lines+markers",
                line={"color": INK, "width": 1.5, "dash": "dot"},
                marker={"symbol": "line-ns-open", "size": 10, "color": INK}, showlegend=False,
                hovertemplate="95 % prediction interval<extra></extra>"))
        lines.append(Line("", ""))  # a blank row between classes
    lines = lines[:-1]

    for x, label in REFERENCE_LINES:
        fig.add_vline(x=x, line={"color": "#9e9e9e", "width": 1, "dash": "dash"},
                      annotation_text=label, annotation_position="top",
                      annotation_font={"size": 12, "color": "#555555"})
    for y, line in enumerate(lines):
        if line.numbers:
            fig.add_annotation(x=1.0, xref="paper", xanchor="left", xshift=12, y=y, yref="y",
                               text=line.numbers, showarrow=False, font={"size": 13})
    fig.update_layout(
        height=110 + ROW_HEIGHT * len(lines),
        xaxis={"range": [-0.02, 1.02], "title": axis_title, "tickformat": ".1f", "dtick": 0.1,
               "showgrid": False, "zeroline": False},
        yaxis={"tickvals": list(range(len(lines))), "ticktext": [line.label for line in lines],
               "range": [len(lines) - 0.5, -0.5], "showgrid": False, "tickfont": {"size": 13}},
        margin={"l": 10, "r": 230, "t": 40, "b": 50}, plot_bgcolor="white",
        font={"size": 13})
    return fig
