"""Classification against labels: per-class precision and recall, on a development half and a
held-out half of the curated trials (../shared/reference/trials.csv), and the share of real
off-topic trials (tests/fixtures/live_corpus/offtopic_trials.csv) put into a therapy class.

The halves are fixed by the trial id (md5, first hex digit 0-7 = development): rules are
written looking at development errors only; the held-out half measures them.

    python tools/classification_report.py data/warehouse.duckdb [--show-errors dev|all]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from collections import Counter
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
CURATED = ROOT.parent / "shared" / "reference" / "trials.csv"
OFFTOPIC = ROOT / "tests" / "fixtures" / "live_corpus" / "offtopic_trials.csv"
NOT_A_CLASS = {"not_stem_cell", "needs_review", "unclassified"}


def half(trial_id: str) -> str:
    return "development" if hashlib.md5(trial_id.encode()).hexdigest()[0] in "01234567" \
        else "held_out"


def labels(path: Path, id_column: str, label_column: str) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row[id_column]: row[label_column] for row in csv.DictReader(handle)}


def per_class(pairs: list[tuple[str, str]]) -> dict[str, tuple[float | None, float | None, int]]:
    classes = sorted({label for label, _ in pairs} | {p for _, p in pairs})
    out = {}
    for cls in classes:
        tp = sum(1 for label, p in pairs if label == cls and p == cls)
        predicted = sum(1 for _, p in pairs if p == cls)
        actual = sum(1 for label, _ in pairs if label == cls)
        out[cls] = (tp / predicted if predicted else None, tp / actual if actual else None, actual)
    return out


def report(predicted: dict[str, str], rules: dict[str, str], show: str | None) -> dict:
    curated = labels(CURATED, "trial_id", "cell_therapy_class")
    offtopic = labels(OFFTOPIC, "nct_id", "expected_class")
    result = {}
    for name in ("development", "held_out", "all"):
        ids = [t for t in curated if t in predicted and (name == "all" or half(t) == name)]
        pairs = [(curated[t], predicted[t]) for t in ids]
        accuracy = sum(1 for a, b in pairs if a == b) / len(pairs) if pairs else None
        decided = [(a, b) for a, b in pairs if b != "needs_review"]
        result[name] = {"n": len(pairs), "agreement": accuracy, "per_class": per_class(pairs),
                        "to_review": len(pairs) - len(decided),
                        "agreement_decided": (sum(1 for a, b in decided if a == b) / len(decided)
                                              if decided else None)}
        if show in (name, "all") and name != "all" or show == "all" and name == "all":
            for t in ids:
                if curated[t] != predicted[t]:
                    print(f"  {name}: {t} curated={curated[t]} predicted={predicted[t]} "
                          f"rule={rules.get(t)}")
    for name in ("development", "held_out", "all"):
        off_ids = [t for t, label in offtopic.items() if label == "not_stem_cell"
                   and t in predicted and (name == "all" or half(t) == name)]
        into_class = [t for t in off_ids if predicted[t] not in NOT_A_CLASS]
        result[f"offtopic_{name}"] = {
            "n": len(off_ids), "into_a_class": len(into_class),
            "share": len(into_class) / len(off_ids) if off_ids else None,
            "classes": Counter(predicted[t] for t in into_class),
            "needs_review": sum(1 for t in off_ids if predicted[t] == "needs_review")}
        if show in (name, "all") and name != "all" or show == "all" and name == "all":
            for t in into_class:
                print(f"  off-topic {name}: {t} -> {predicted[t]} rule={rules.get(t)}")
        expected = [t for t, label in offtopic.items() if label != "not_stem_cell"
                    and t in predicted and (name == "all" or half(t) == name)]
        result[f"offtopic_{name}"]["other_labels_agree"] = (
            sum(1 for t in expected if predicted[t] == offtopic[t]), len(expected))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--show-errors", choices=["development", "held_out", "all"])
    args = parser.parse_args()
    con = duckdb.connect(str(args.warehouse), read_only=True)
    rows = con.sql("select trial_id, therapy_class, therapy_class_rule "
                   "from intermediate.int_trial_classification").fetchall()
    predicted = {t: c for t, c, _ in rows}
    rules = {t: r for t, _, r in rows}
    result = report(predicted, rules, args.show_errors)
    for name in ("development", "held_out", "all"):
        part = result[name]
        if part["agreement"] is None:
            continue
        print(f"{name}: agreement {part['agreement']:.1%} over {part['n']} curated trials; "
              f"{part['to_review']} sent to review, agreement on the other "
              f"{part['n'] - part['to_review']}: {part['agreement_decided']:.1%}")
        for cls, (precision, recall, support) in part["per_class"].items():
            shown = [f"{v:.2f}" if v is not None else "  - " for v in (precision, recall)]
            print(f"    {cls:28s} precision {shown[0]}  recall {shown[1]}  n={support}")
    for name in ("development", "held_out", "all"):
        off = result[f"offtopic_{name}"]
        if off["n"]:
            agree, total = off["other_labels_agree"]
            print(f"off-topic {name}: {off['into_a_class']} of {off['n']} put into a therapy "
                  f"class ({off['share']:.1%}) {dict(off['classes'])}; {off['needs_review']} "
                  f"to review; islet-transplant / needs-review labels agreeing: {agree}/{total}")


if __name__ == "__main__":
    main()
