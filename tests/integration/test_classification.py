"""Therapy classification against the curators' labels (shared/reference/trials.csv)."""

from __future__ import annotations

import csv
import re
from collections import Counter

import duckdb
import pytest

from flows.settings import REPO_DIR
from tests.conftest import reference_file

pytestmark = pytest.mark.integration


def agreement(predicted: dict[str, str], labels: dict[str, str]) -> tuple[float, dict]:
    pairs = [(labels[t], predicted[t]) for t in labels if t in predicted]
    classes = sorted({label for label, _ in pairs} | {p for _, p in pairs})
    per_class = {}
    for cls in classes:
        tp = sum(1 for label, p in pairs if label == cls and p == cls)
        predicted_n = sum(1 for _, p in pairs if p == cls)
        actual_n = sum(1 for label, _ in pairs if label == cls)
        per_class[cls] = (tp / predicted_n if predicted_n else None,
                          tp / actual_n if actual_n else None, actual_n)
    accuracy = sum(1 for label, p in pairs if label == p) / len(pairs)
    return accuracy, per_class


def test_classification_agrees_with_curated_labels(built_warehouse, capsys):
    reference = reference_file("trials.csv")
    con = duckdb.connect(str(built_warehouse.warehouse), read_only=True)
    predicted = dict(con.sql("select trial_id, therapy_class from marts.dim_trials").fetchall())
    overridden = con.sql("select count(*) from intermediate.int_trial_classification "
                         "where has_override").fetchone()[0]
    con.close()
    with reference.open() as handle:
        labels = {r["trial_id"]: r["cell_therapy_class"] for r in csv.DictReader(handle)}
    accuracy, per_class = agreement(predicted, labels)
    with capsys.disabled():
        print(f"\nclassification agreement: {accuracy:.1%} over "
              f"{sum(1 for t in labels if t in predicted)} trials ({overridden} overrides)")
        for cls, (precision, recall, support) in per_class.items():
            print(f"  {cls:28s} precision {precision if precision is None else f'{precision:.2f}'}"
                  f"  recall {recall if recall is None else f'{recall:.2f}'}  n={support}")
    assert overridden == 0  # the measured agreement is the rules' own
    assert accuracy >= 0.90


def test_rules_never_name_a_trial():
    rules = (REPO_DIR / "dbt_project" / "seeds" / "therapy_rules.csv").read_text()
    assert not re.search(r"NCT\d|ChiCTR|IRCT\d|\d{4}-\d{6}-\d{2}", rules)


def test_every_trial_has_a_class_and_the_rule_that_set_it(built_warehouse):
    con = duckdb.connect(str(built_warehouse.warehouse), read_only=True)
    rows = con.sql("select therapy_class, therapy_class_rule, msc_source from "
                   "intermediate.int_trial_classification").fetchall()
    con.close()
    assert all(cls and rule for cls, rule, _ in rows)
    assert all((src is not None) == (cls in {"msc", "msc_exosomes"}) for cls, _, src in rows)
    counts = Counter(cls for cls, _, _ in rows)
    assert counts["msc"] > 50 and counts["islet_transplant_comparator"] > 20
