"""tools/classification_report.py: the recorded split is the seeded one, and the figures count
agreement, review and confidently wrong the way issue #22 defines them."""

from __future__ import annotations

import csv

from tools.classification_report import (
    CASES,
    SPLIT_FILE,
    curated_labels,
    figures,
    live_corpus_labels,
    meets_goals,
    outcome,
    seeded_split,
)


def recorded_rows() -> list[dict[str, str]]:
    with SPLIT_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_recorded_split_is_the_seeded_one_and_covers_every_labelled_trial():
    rows = recorded_rows()
    recorded = {r["trial_id"]: r for r in rows}
    assert len(recorded) == len(rows)
    labelled = {**curated_labels(), **live_corpus_labels()}
    assert set(labelled) == set(recorded)
    for trial_id, row in recorded.items():
        if row["corpus"] == "issue_22_cases":
            assert row["split"] == "development", trial_id  # rules were written from them
        else:
            assert row["split"] == seeded_split(trial_id), trial_id


def test_the_trials_rules_were_written_from_are_development():
    with CASES.open(newline="", encoding="utf-8") as handle:
        cases = {r["nct_id"] for r in csv.DictReader(handle)}
    recorded = {r["trial_id"]: r["split"] for r in recorded_rows()}
    assert cases and all(recorded[t] == "development" for t in cases)


def test_both_halves_hold_enough_trials_to_measure():
    rows = recorded_rows()
    for corpus, floor in (("curated", 60), ("live_corpus", 120)):
        for split in ("development", "held_out"):
            assert sum(1 for r in rows if r["corpus"] == corpus and r["split"] == split) >= floor


def test_review_is_not_agreement_and_another_class_is_confidently_wrong():
    assert outcome("msc", "msc") == "agree"
    assert outcome("msc", "needs_review") == "review"
    assert outcome("msc", "not_stem_cell") == "wrong"
    assert outcome("needs_review", "needs_review") == "agree"
    part = figures([("msc", "msc"), ("msc", "needs_review"), ("cord_blood", "islet_transplant_comparator"),
                    ("hsc", "hsc")])
    assert (part["agree"], part["to_review"], part["wrong"]) == (2, 1, 1)
    assert part["agreement_or_review"] == 0.75 and part["wrong_share"] == 0.25


def test_the_goals_of_issue_22():
    good = {"held_out": figures([("msc", "msc")] * 19 + [("msc", "needs_review")]),
            "offtopic_held_out": {"share": 0.0}}
    assert all(meets_goals(good).values())
    bad = {"held_out": figures([("msc", "msc")] * 18 + [("msc", "hsc")] * 2),
           "offtopic_held_out": {"share": 0.02}}
    assert meets_goals(bad) == {"agreement_or_review": False, "review": True, "wrong": False,
                                "offtopic_into_a_class": False}
