"""Classification against labels, per split (development / held-out / all): how many trials the
rules put in the curator's class, how many they send to review, how many they put confidently
in another class, and how many real off-topic trials they put into a therapy class.

Labelled trials: the curated trials (../shared/reference/trials.csv, `cell_therapy_class`) and
the live corpus (tests/fixtures/live_corpus/offtopic_trials.csv and classification_cases.csv,
`expected_class`, plus the results record NCT00763412, not a stem-cell trial).

The split is recorded in tests/fixtures/classification_split.csv (trial id -> development or
held_out), drawn with the seed SPLIT_SEED before the rules of issue #22 were written: rules are
written looking at development errors only; the held-out trials measure them. The trials of
classification_cases.csv were added to write rules from (the kinds #22 lists), so they are
development by construction. A labelled trial missing from the file (added later) is assigned by
the same seeded hash and counted as such.

    python tools/classification_report.py data/warehouse.duckdb [--show-errors development]
    python tools/classification_report.py --write-split   # only when the split is re-drawn
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
CASES = ROOT / "tests" / "fixtures" / "live_corpus" / "classification_cases.csv"
SPLIT_FILE = ROOT / "tests" / "fixtures" / "classification_split.csv"
SPLIT_SEED = "issue-22"
# The live corpus's one full results record: a repaglinide trial, not a stem-cell therapy.
LIVE_CORPUS_EXTRA = {"NCT00763412": "not_stem_cell"}
NOT_A_CLASS = {"not_stem_cell", "needs_review", "unclassified"}
REVIEW = "needs_review"
SPLITS = ("development", "held_out", "all")
GOALS = {"agreement_or_review": (">=", 0.95), "review": ("<=", 0.15), "wrong": ("<=", 0.05),
         "offtopic_into_a_class": ("<=", 0.01)}


def seeded_split(trial_id: str, seed: str = SPLIT_SEED) -> str:
    digest = hashlib.md5(f"{seed}:{trial_id}".encode()).hexdigest()
    return "development" if digest[0] in "01234567" else "held_out"


def labels(path: Path, id_column: str, label_column: str) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row[id_column]: row[label_column] for row in csv.DictReader(handle)}


def curated_labels() -> dict[str, str]:
    return labels(CURATED, "trial_id", "cell_therapy_class")


def live_corpus_labels() -> dict[str, str]:
    return {**labels(OFFTOPIC, "nct_id", "expected_class"),
            **labels(CASES, "nct_id", "expected_class"), **LIVE_CORPUS_EXTRA}


def recorded_split() -> dict[str, str]:
    return labels(SPLIT_FILE, "trial_id", "split")


def write_split() -> None:
    cases = labels(CASES, "nct_id", "expected_class")
    corpora = [("curated", curated_labels()),
               ("live_corpus", {t: v for t, v in live_corpus_labels().items() if t not in cases}),
               ("issue_22_cases", cases)]
    with SPLIT_FILE.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["trial_id", "corpus", "split"])
        for corpus, labelled in corpora:
            for trial_id in sorted(labelled):
                split = "development" if corpus == "issue_22_cases" else seeded_split(trial_id)
                writer.writerow([trial_id, corpus, split])


def split_of(trial_id: str, recorded: dict[str, str]) -> str:
    return recorded.get(trial_id) or seeded_split(trial_id)


def outcome(label: str, predicted: str) -> str:
    if predicted == label:
        return "agree"
    return "review" if predicted == REVIEW else "wrong"


def per_class(pairs: list[tuple[str, str]]) -> dict[str, tuple[float | None, float | None, int]]:
    classes = sorted({label for label, _ in pairs} | {p for _, p in pairs})
    out = {}
    for cls in classes:
        tp = sum(1 for label, p in pairs if label == cls and p == cls)
        predicted = sum(1 for _, p in pairs if p == cls)
        actual = sum(1 for label, _ in pairs if label == cls)
        out[cls] = (tp / predicted if predicted else None, tp / actual if actual else None, actual)
    return out


def figures(pairs: list[tuple[str, str]]) -> dict:
    counts = Counter(outcome(label, p) for label, p in pairs)
    n = len(pairs)
    share = (lambda k: counts[k] / n) if n else (lambda k: None)
    decided = n - counts["review"]
    return {"n": n, "agree": counts["agree"], "to_review": counts["review"],
            "wrong": counts["wrong"], "agreement": share("agree"), "review": share("review"),
            "wrong_share": share("wrong"),
            "agreement_or_review": (counts["agree"] + counts["review"]) / n if n else None,
            "agreement_decided": counts["agree"] / decided if decided else None,
            "per_class": per_class(pairs)}


def report(predicted: dict[str, str], rules: dict[str, str], show: str | None,
           listing_interventions: set[str] | None = None) -> dict:
    """Figures per corpus and split; `show` prints the disagreements of that split. With
    `listing_interventions` (the trials whose record lists an intervention), the live corpus is
    also measured on those alone: many of its rows carry a title only."""
    recorded = recorded_split()
    corpora = {"curated": curated_labels(), "live": live_corpus_labels()}
    result: dict = {}
    for corpus, labelled in corpora.items():
        for name in SPLITS:
            ids = sorted(t for t in labelled if t in predicted
                         and (name == "all" or split_of(t, recorded) == name))
            pairs = [(labelled[t], predicted[t]) for t in ids]
            key = name if corpus == "curated" else f"live_{name}"
            result[key] = figures(pairs)
            if corpus == "live" and listing_interventions is not None:
                result[f"live_listed_{name}"] = figures(
                    [(labelled[t], predicted[t]) for t in ids if t in listing_interventions])
            off = [t for t in ids if labelled[t] == "not_stem_cell"]
            into_class = [t for t in off if predicted[t] not in NOT_A_CLASS]
            if corpus == "live":
                result[f"offtopic_{name}"] = {
                    "n": len(off), "into_a_class": len(into_class),
                    "share": len(into_class) / len(off) if off else None,
                    "classes": Counter(predicted[t] for t in into_class),
                    "needs_review": sum(1 for t in off if predicted[t] == REVIEW)}
            if show == name:
                for t in ids:
                    if labelled[t] != predicted[t]:
                        print(f"  {corpus} {name}: {t} label={labelled[t]} "
                              f"predicted={predicted[t]} rule={rules.get(t)}")
    for name in SPLITS:
        pairs_all = result[name]["n"] + result[f"live_{name}"]["n"]
        result[f"unseen_{name}"] = sum(1 for t in {**corpora["curated"], **corpora["live"]}
                                       if t in predicted and t not in recorded
                                       and (name == "all" or seeded_split(t) == name))
        result[f"labelled_{name}"] = pairs_all
    return result


def meets_goals(result: dict, split: str = "held_out") -> dict[str, bool]:
    """The goals of issue #22 on one split: curated agreement-or-review, review and confidently
    wrong shares, and the share of off-topic trials put into a therapy class."""
    values = {"agreement_or_review": result[split]["agreement_or_review"],
              "review": result[split]["review"], "wrong": result[split]["wrong_share"],
              "offtopic_into_a_class": result[f"offtopic_{split}"]["share"]}
    return {goal: (values[goal] >= bound if op == ">=" else values[goal] <= bound)
            for goal, (op, bound) in GOALS.items() if values[goal] is not None}


def print_report(result: dict, splits: tuple[str, ...] = SPLITS) -> None:
    for corpus, prefix in (("curated trials", ""), ("live corpus (labelled)", "live_"),
                           ("live corpus, records listing an intervention", "live_listed_")):
        for name in splits:
            part = result.get(f"{prefix}{name}")
            if not part or not part["n"]:
                continue
            print(f"{corpus}, {name} ({part['n']}): agree {part['agree']} ({part['agreement']:.1%}), "
                  f"to review {part['to_review']} ({part['review']:.1%}), confidently wrong "
                  f"{part['wrong']} ({part['wrong_share']:.1%}); agreement or review "
                  f"{part['agreement_or_review']:.1%}")
            if prefix == "":
                for cls, (precision, recall, support) in part["per_class"].items():
                    shown = [f"{v:.2f}" if v is not None else "  - " for v in (precision, recall)]
                    print(f"    {cls:28s} precision {shown[0]}  recall {shown[1]}  n={support}")
    for name in splits:
        off = result[f"offtopic_{name}"]
        if off["n"]:
            print(f"off-topic {name}: {off['into_a_class']} of {off['n']} put into a therapy "
                  f"class ({off['share']:.1%}) {dict(off['classes'])}; {off['needs_review']} "
                  f"to review")
    unseen = result["unseen_all"]
    if unseen:
        print(f"{unseen} labelled trial(s) are not in {SPLIT_FILE.name} (added after the split; "
              f"assigned by the seed)")
    for name in [s for s in ("held_out", "all") if s in splits]:
        goals = meets_goals(result, name)
        print(f"goals on {name}: " + ", ".join(f"{g} {'met' if ok else 'NOT met'}"
                                               for g, ok in goals.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, nargs="?")
    parser.add_argument("--show-errors", choices=list(SPLITS))
    parser.add_argument("--only", choices=list(SPLITS),
                        help="print the figures of one split (development while writing rules)")
    parser.add_argument("--write-split", action="store_true",
                        help=f"re-draw {SPLIT_FILE.name} with SPLIT_SEED (not for routine use)")
    args = parser.parse_args()
    if args.write_split:
        write_split()
        print(f"wrote {SPLIT_FILE}")
        return
    if args.warehouse is None:
        parser.error("the warehouse path is required")
    con = duckdb.connect(str(args.warehouse), read_only=True)
    rows = con.sql("select trial_id, therapy_class, therapy_class_rule "
                   "from intermediate.int_trial_classification").fetchall()
    listing = {t for (t,) in con.sql("select trial_id from intermediate.int_trial_text "
                                     "where intervention_count > 0").fetchall()}
    con.close()
    result = report({t: c for t, c, _ in rows}, {t: r for t, _, r in rows}, args.show_errors,
                    listing)
    print_report(result, (args.only,) if args.only else SPLITS)


if __name__ == "__main__":
    main()
