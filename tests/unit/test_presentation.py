"""How the dashboard writes labels, intervals and dates, and colours classes
(dashboards/presentation.py): a NULL never shows as 'nan', a date never as midnight, and one
class -> colour map from the seed therapy_classes."""

from __future__ import annotations

import csv
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from dashboards.forest_plot import square_size, summary_numbers
from dashboards.presentation import (
    class_colours,
    class_labels,
    cohort_label,
    colour_of,
    colours_by_label,
    count_text,
    date_text,
    enrollment_text,
    interval_text,
    is_missing,
    phase_colours,
    phase_rank,
    range_text,
    therapy_name,
    timestamp_text,
    wrap_label,
)
from flows.settings import REPO_DIR

SEED = REPO_DIR / "dbt_project" / "seeds" / "therapy_classes.csv"
MISSING = [None, float("nan"), np.nan, pd.NA, pd.NaT, "", "  "]


@pytest.mark.parametrize("missing", MISSING, ids=repr)
def test_a_null_msc_source_adds_nothing_to_the_label(missing):
    assert therapy_name("Hematopoietic stem cells", missing) == "Hematopoietic stem cells"


def test_a_null_from_parquet_is_nan_and_never_printed():
    frame = pd.DataFrame({"therapy_label": ["Hematopoietic stem cells", "Mesenchymal stromal cells"],
                          "msc_source": [np.nan, "umbilical_cord"]})
    assert bool(frame["msc_source"].iloc[0])  # NaN is truthy: why `if msc_source` printed "nan"
    names = [therapy_name(r.therapy_label, r.msc_source) for r in frame.itertuples()]
    assert names == ["Hematopoietic stem cells", "Mesenchymal stromal cells · umbilical cord"]
    assert not any("nan" in n.lower() for n in names)


def test_the_all_sources_row_is_not_labelled_twice():
    assert therapy_name("Mesenchymal stromal cells (all MSC sources pooled)", "all sources") == \
        "Mesenchymal stromal cells (all MSC sources pooled)"


@pytest.mark.parametrize("label", ["Umbilical cord blood", None, float("nan"), ""], ids=repr)
@pytest.mark.parametrize("source", ["adipose", "all sources", None, float("nan"), pd.NA, ""],
                         ids=repr)
def test_no_label_ever_reads_nan_or_none(label, source):
    name = therapy_name(label, source)
    assert name.strip()
    assert "nan" not in name.lower() and "none" not in name.lower() and "<na>" not in name


def test_cohort_labels_name_the_report_and_its_arms_without_nulls():
    assert cohort_label("REICHMAN2025", ["full dose (parts B+C)"]) == \
        "REICHMAN2025 · full dose (parts B+C)"
    assert cohort_label("COURI2009", [None, float("nan")]) == "COURI2009"
    assert cohort_label("BHANSALI2017", ["BM-MSC", "BM-MNC", "BM-MSC"]) == \
        "BHANSALI2017 · BM-MNC + BM-MSC"
    assert cohort_label(float("nan"), []) == "(no study id)"


def test_intervals_counts_and_not_reported():
    assert interval_text(0.8333, 0.516, 0.979) == "0.83 (0.52–0.98)"
    assert interval_text(0.5, None, float("nan")) == "0.50"
    assert interval_text(float("nan"), 0.1, 0.2) == "NR"
    assert range_text(0.03, 0.98) == "0.03–0.98"
    assert range_text(None, 0.98) == ""
    assert count_text(10, 12) == "10/12"
    assert count_text(float("nan"), 12) == "NR"
    assert count_text(0, 190) == "0/190"  # an explicit zero is a count, not "not reported"


@pytest.mark.parametrize("value", [pd.Timestamp("2010-08-01"), date(2010, 8, 1),
                                   pd.Timestamp("2010-08-01 00:00:00").to_pydatetime()])
def test_dates_show_as_dates(value):
    assert date_text(value) == "2010-08-01"


@pytest.mark.parametrize("missing", MISSING, ids=repr)
def test_missing_values(missing):
    assert is_missing(missing)
    assert date_text(missing) == ""


@pytest.mark.parametrize("present", [0, 0.0, "0", "x", False])
def test_zero_and_false_are_values(present):
    assert not is_missing(present)


def seed_classes() -> list[dict[str, str]]:
    return list(csv.DictReader(SEED.open(encoding="utf-8")))


def dim_therapies_like_the_mart() -> pd.DataFrame:
    """dim_therapies' shape: one row per class, and per MSC source for msc."""
    rows = []
    for r in seed_classes():
        if r["therapy_class"] == "msc":  # only per source when every MSC trial names one
            for source in ("umbilical_cord", "adipose"):
                rows.append({"therapy_class": "msc", "msc_source": source,
                             "label": f"{r['label']} ({source})", "class_label": r["label"],
                             "colour": r["colour"]})
            continue
        rows.append({"therapy_class": r["therapy_class"], "msc_source": None,
                     "label": r["label"], "class_label": r["label"], "colour": r["colour"]})
    return pd.DataFrame(rows)


def test_every_seed_class_has_its_own_colour():
    classes = seed_classes()
    colours = [r["colour"] for r in classes]
    assert all(c.startswith("#") and len(c) == 7 for c in colours)
    assert len(set(colours)) == len(colours), "two classes share a colour"
    assert class_colours(dim_therapies_like_the_mart()) == \
        {r["therapy_class"]: r["colour"] for r in classes}


def test_the_colour_map_refuses_shared_or_split_colours():
    therapies = dim_therapies_like_the_mart()
    shared = therapies.copy()
    shared.loc[shared["therapy_class"] == "hsc", "colour"] = \
        shared.loc[shared["therapy_class"] == "msc", "colour"].iloc[0]
    with pytest.raises(ValueError, match="sharing a colour"):
        class_colours(shared)
    split = therapies.copy()
    split.loc[split["msc_source"] == "adipose", "colour"] = "#123456"
    with pytest.raises(ValueError, match="several colours"):
        class_colours(split)


def test_labels_and_legend_colours_follow_the_same_map():
    therapies = dim_therapies_like_the_mart()
    colours, labels = class_colours(therapies), class_labels(therapies)
    assert labels["msc"] == "Mesenchymal stromal cells"
    by_label = colours_by_label(colours, labels)
    assert by_label["Hematopoietic stem cells"] == colours["hsc"]
    assert len(set(by_label.values())) == len(by_label)
    assert colour_of("a_new_class", colours) not in colours.values()
    assert colour_of(float("nan"), colours) not in colours.values()


def test_long_labels_wrap_at_words():
    assert wrap_label("ESC / pluripotent-derived islets", 14) == \
        "ESC /<br>pluripotent-<br>derived islets"
    assert wrap_label("iPSC-derived islets", 14) == "iPSC-derived<br>islets"
    assert wrap_label("msc", 14) == "msc"


def test_square_area_grows_with_the_weight():
    sizes = [square_size(w) for w in (0.0, 0.1, 0.25, 0.5, 1.0)]
    assert sizes == sorted(sizes)
    assert math.isclose((sizes[3] - sizes[0]) / (sizes[4] - sizes[0]), math.sqrt(0.5))


def test_phases_in_trial_order_in_shades_that_are_no_class_colour():
    phases = ["NA", "PHASE2", "(not registered)", "PHASE1/PHASE2", "EARLY_PHASE1", "PHASE3"]
    ordered = sorted(phases, key=phase_rank)
    assert ordered == ["EARLY_PHASE1", "PHASE1/PHASE2", "PHASE2", "PHASE3", "NA",
                       "(not registered)"]
    colours = phase_colours(ordered)
    assert len(set(colours.values())) == len(phases)
    seed = {r["colour"] for r in seed_classes()}
    assert not seed & set(colours.values())


def test_enrollment_reads_as_a_count_with_its_kind():
    assert enrollment_text(44, "ACTUAL") == "44 actual"
    assert enrollment_text(21.0, None) == "21"
    assert enrollment_text(float("nan"), "ESTIMATED") == ""


def test_timestamps_to_the_minute_in_utc():
    assert timestamp_text("2026-12-05T21:42:36.349380+00:00") == "2026-12-05 21:42 UTC"
    assert timestamp_text("2026-12-05T22:42:00+01:00") == "2026-12-05 21:42 UTC"
    assert timestamp_text(None) == ""


def test_the_numbers_beside_a_pooled_row_fit_the_plots_right_margin():
    """The margin holds about 40 characters at 13 px: the certainty takes a line of its own
    (the screenshots showed 'certainty ve' cut off)."""
    row = pd.Series({"k_cohorts": 12, "n_participants": 12345, "estimate": 0.571,
                     "ci_low": 0.031, "ci_high": 0.982, "certainty": "very low"})
    lines = summary_numbers(row).split("<br>")
    assert lines[-1] == "certainty very low (automatic)"
    assert max(len(line) for line in lines) <= 40, lines
