"""The README's analyst questions, run as written against the session warehouse, each checked
against what the snapshot says (counts, ids, values), not only that rows come back."""

from __future__ import annotations

import csv
import re
from datetime import date

import duckdb
import pytest

from flows.settings import REPO_DIR

pytestmark = pytest.mark.integration
SHEET = REPO_DIR / "data" / "outcomes" / "published_outcomes.csv"


def readme_questions() -> dict[int, str]:
    """Question number -> its SQL block, from the README's analyst section."""
    text = (REPO_DIR / "README.md").read_text()
    section = text.split("## Analyst questions", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"\*\*(\d+)\.[^\n]*\n(?:[^\n]*\n)*?```sql\n(.*?)```", section, flags=re.S)
    return {int(number): sql for number, sql in blocks}


def run(path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def q1_pooled_insulin_independence(rows, path):
    by_class = {(label, dtype): (k, n, est, low, high, method, caveats)
                for label, _, dtype, k, n, est, low, high, method, caveats in rows}
    assert by_class[("ESC / pluripotent-derived islets", "T1D")][:5] == (1, 12, 0.83, 0.52, 0.98)
    assert by_class[("Allogeneic islet transplantation", "T1D")][:2] == (1, 36)  # 16/36 at 12 mo
    assert by_class[("Bone marrow mononuclear cells", "T1D")][:2] == (1, 134)
    for k, n, estimate, low, high, method, caveats in by_class.values():
        assert k >= 1 and n >= 1 and low <= estimate <= high
        assert ("single cohort" in caveats) == (k == 1) == ("Clopper-Pearson" in method)
    estimates = [r[5] for r in rows]
    assert estimates == sorted(estimates, reverse=True)


def q2_recruiting_msc_t2d_by_country(rows, path):
    trials = run(path, """
        select trial_id, countries from marts.dim_trials
        where therapy_class = 'msc' and diabetes_type in ('T2D', 'both')
          and overall_status in ('RECRUITING', 'NOT_YET_RECRUITING', 'ENROLLING_BY_INVITATION')""")
    without_country = sum(1 for _, countries in trials if not countries)
    assert without_country >= 3  # NCT07495956, NCT07396155, IRCT20180619040147N5 list none
    assert rows[0] == ("(no country listed)", without_country)  # counted, not dropped
    assert ("China", 2) in rows and ("United States", 2) in rows
    # every trial is counted once per listed country, or once when it lists none
    assert sum(n for _, n in rows) == sum(max(len(countries), 1) for _, countries in trials)


def q3_overdue_results(rows, path):
    overdue = {r[0]: r for r in rows}
    assert {"NCT00955669", "NCT00690066", "NCT02057211"} <= set(overdue)
    assert "NCT00315133" not in overdue  # the warehouse holds its outcome rows (Voltarelli 2007)
    assert "NCT00305344" not in overdue  # completed, results posted
    today = date.today()
    for trial_id, _, _, completed, months in rows:
        assert months == (today.year - completed.year) * 12 + today.month - completed.month
        assert months > 24, trial_id
    months = [r[4] for r in rows]
    assert months == sorted(months, reverse=True)


def q4_tumour_and_thrombosis_reporting(rows, path):
    # one row per class x diabetes type x harm; summed over the types here
    by_key: dict = {}
    for cls, _type, harm, with_count, not_reporting, _basis, affected, *_, at_risk, _lo, _hi, nr \
            in rows:
        total = by_key.setdefault((cls, harm), [0, 0, None, None, True])
        total[0] += with_count
        total[1] += not_reporting
        if affected is not None:
            total[2], total[3] = (total[2] or 0) + affected, (total[3] or 0) + at_risk
        total[4] = total[4] and nr
    # Ryan 2005 (5/65, type 1) and the injected registry results record (1/12, type not stated)
    assert by_key[("islet_transplant_comparator", "thrombosis")][:4] == [2, 2, 6, 77]
    by_type = {(cls, dtype, harm): (affected, at_risk)
               for cls, dtype, harm, *_, affected, _l, _h, at_risk, _lo, _hi, _nr in rows}
    assert by_type[("islet_transplant_comparator", "T1D", "thrombosis")] == (5, 65)
    assert by_type[("islet_transplant_comparator", None, "thrombosis")] == (1, 12)
    assert by_key[("esc_derived_islets", "tumorigenicity")][:4] == [1, 2, 0, 15]
    # no MSC cohort reports a count for either harm: "not reported", never a zero
    assert by_key[("msc", "thrombosis")] == [0, 8, None, None, True]
    assert by_key[("msc", "tumorigenicity")] == [0, 8, None, None, True]


def q5_trace_hsc_pooled_number(rows, path):
    # Voltarelli 2007's patients are inside Couri 2009: one cohort, the larger report counts
    assert [(r[0], r[1]) for r in rows] == [("COURI2009_AHST", "NCT00315133"),
                                           ("GU2012_AHST_DKA", "NCT00807651"),
                                           ("LI2012_AHST", "study:LI2012_AHST")]
    with SHEET.open() as handle:
        sheet = {(r["study_id"], r["arm"], r["n_events"]): r for r in csv.DictReader(handle)
                 if r["outcome"] == "insulin_independence"}
    for study_id, _, arm, events, participants, proportion, verification, url in rows:
        source = sheet[(study_id, arm, str(events))]
        assert participants == int(source["n_total"])
        assert proportion == pytest.approx(events / participants, abs=5e-4)
        assert verification == source["verified"] and url


def q6_publications_of_pluripotent_trials(rows, path):
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("ChiCTR2300072200", "doi:10.1016/j.cell.2024.09.004", "high"),
        ("NCT03163511", "pmid:35028608", "high"),
        ("NCT04786262", "pmid:40544428", "high")]  # Reichman 2025 (zimislecel)


def q7_pipeline_by_class_and_phase(rows, path):
    assert sum(r[2] for r in rows) == run(path, "select count(*) from marts.dim_trials")[0][0]
    by_key = {(cls, phase): (trials, enrolled) for cls, phase, trials, enrolled in rows}
    assert by_key[("hsc", "PHASE2")] == (4, 25)
    assert by_key[("msc", "PHASE2")] == (42, 451)
    assert by_key[("needs_review", "PHASE2")] == (4, None)  # product codes only, sent to review
    assert by_key[("esc_derived_islets", "PHASE3")] == (2, None)  # no ACTUAL enrollment known


CHECKS = {
    1: q1_pooled_insulin_independence,
    2: q2_recruiting_msc_t2d_by_country,
    3: q3_overdue_results,
    4: q4_tumour_and_thrombosis_reporting,
    5: q5_trace_hsc_pooled_number,
    6: q6_publications_of_pluripotent_trials,
    7: q7_pipeline_by_class_and_phase,
}


def test_every_readme_question_has_its_expected_facts():
    assert set(readme_questions()) == set(CHECKS)


@pytest.mark.parametrize("number", sorted(CHECKS))
def test_readme_question_answers_with_the_snapshot_facts(built_warehouse, number):
    sql = readme_questions()[number]
    rows = run(built_warehouse.warehouse, sql)
    CHECKS[number](rows, built_warehouse.warehouse)
