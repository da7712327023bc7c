"""Property tests: generated results sections (the registry's documented structure, with many
groups, hundreds of terms, counts near the number at risk, nulls, strings where numbers belong)
through the real staging / intermediate / mart SQL (tests/integration/results_sql.py), and the
invariants on what comes out:

- 0 <= affected <= at risk for every harm row; events >= affected where both are given; a
  category of several terms is never a sum of participants: at least its largest term, at most
  min(sum of its terms, at risk), exact only where the two coincide;
- the group totals are the registry's own, each with its own at-risk count;
- a registry count of participants is never above its own group's participants analysed;
- safety figures: proportions and intervals within [0, 1], low <= estimate <= high;
- a record whose own numbers are impossible is quarantined and none of its results rows is in a
  mart; a record with only odd-but-possible values (strings, NA, nulls) is never quarantined.

The session's dbt build takes about a minute (it builds every model the results marts need);
each example then runs in well under a second.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.results_sections import Generated, results_records
from tests.integration.results_sql import ResultsSql, build

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def results_sql(tmp_path_factory, dbt_parse_state) -> ResultsSql:
    """One dbt build per session (shared by xdist workers under a file lock)."""
    from filelock import FileLock

    from flows.settings import Settings
    from tests.conftest import seed_parse_state, session_dir

    root = session_dir(tmp_path_factory, "results_sql")
    settings = Settings(data_dir=root / "data")
    with FileLock(f"{root}.lock"):
        if not (root / "built").exists():
            seed_parse_state(settings.data_path, dbt_parse_state)
            build(settings)
            (root / "built").touch()
    return ResultsSql(settings.build_database,
                      settings.build_dir / "dbt_target" / "manifest.json")


batches = st.integers(1, 3).flatmap(
    lambda n: st.tuples(*(results_records(index=i) for i in range(n))))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(batch=batches)
def test_results_sections_publish_only_possible_counts(results_sql, batch):
    generated = list(batch)
    with results_sql.run([g.record for g in generated]) as con:
        assert_harm_rows_within_their_at_risk(con)
        assert_quarantine(con, generated)
        for g in generated:
            if g.impossible is None:
                assert_group_totals_are_the_registrys(con, g)
                assert_terms_stay_per_term(con, g)
        assert_categories_are_bounded_by_their_terms(con)
        assert_registry_counts_within_their_group(con)
        assert_safety_figures_are_proportions(con)


def rows(con, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def assert_harm_rows_within_their_at_risk(con) -> None:
    broken = rows(con, """
        select adverse_event_fact_id, affected_count, at_risk_count
        from intermediate.int_harm_facts
        where affected_count < 0 or affected_count > at_risk_count""")
    assert not broken, f"participants affected above their at-risk count: {broken[:5]}"
    broken = rows(con, """
        select adverse_event_fact_id, affected_low, affected_high, at_risk_count, events_count,
               affected_count, reporting_status
        from marts.fct_adverse_events
        where (reporting_status = 'reported' and (affected_low is null or at_risk_count is null))
           or affected_low < 0 or affected_low > affected_high or affected_high > at_risk_count
           or not coalesce(affected_count is null
                           or (affected_count = affected_low and affected_count = affected_high), false)
           or events_count < affected_low""")
    assert not broken, f"harm rows break 0 <= low <= high <= at risk, low <= events: {broken[:5]}"
    broken = rows(con, """
        select adverse_event_term_id, events_count, affected_count, at_risk_count
        from marts.fct_adverse_event_terms
        where affected_count < 0 or affected_count > at_risk_count
           or events_count < affected_count""")
    assert not broken, f"term rows break their own counts: {broken[:5]}"


def assert_quarantine(con, generated: list[Generated]) -> None:
    quarantined = {r for (r,) in rows(con, "select distinct record_id from "
                                           "marts.quarantined_records")}
    for g in generated:
        if g.impossible:
            assert g.nct_id in quarantined, f"{g.nct_id} ({g.impossible}) was not quarantined"
            for table, column in (("fct_adverse_events", "trial_id"),
                                  ("fct_adverse_event_terms", "trial_id"),
                                  ("fct_outcomes", "trial_id")):
                (n,) = con.execute(f"select count(*) from marts.{table} where {column} = ?",
                                   [g.nct_id]).fetchone()
                assert n == 0, f"{n} rows of quarantined {g.nct_id} in marts.{table}"
        else:
            assert g.nct_id not in quarantined, (
                f"{g.nct_id} ({g.oddity}) states no impossible number but was quarantined: "
                f"{rows(con, 'select check_name, offending_values from marts.quarantined_records where record_id = ?', [g.nct_id])}")


def assert_group_totals_are_the_registrys(con, g: Generated) -> None:
    published = {(group, category): (status, affected, at_risk) for group, category, status,
                 affected, at_risk in rows(con, """
        select group_id, harm_category, reporting_status, affected_count, at_risk_count
        from marts.fct_adverse_events
        where trial_id = ?
          and harm_category in ('any_serious_adverse_event', 'any_other_adverse_event', 'death')
        """, [g.nct_id])}
    names = {"serious": "any_serious_adverse_event", "other": "any_other_adverse_event",
             "deaths": "death"}
    for (group, kind), (affected, at_risk) in g.totals.items():
        status, got_affected, got_at_risk = published[(group, names[kind])]
        if affected is None:
            assert status == "not_reported" and got_affected is None
        elif at_risk is None:
            assert status == "reported_without_count" and got_at_risk is None
        else:
            assert (status, got_affected, got_at_risk) == ("reported", affected, at_risk)


def assert_terms_stay_per_term(con, g: Generated) -> None:
    by_kind = {(group, kind): at_risk for (group, kind), (_, at_risk) in g.totals.items()}
    expected = sorted(((kind, term, group, events, affected,
                        at_risk if at_risk is not None else by_kind.get((group, kind)))
                       for kind, term, group, events, affected, at_risk in g.term_stats), key=repr)
    published = sorted(rows(con, """
        select event_category, term, group_id, events_count, affected_count, at_risk_count
        from marts.fct_adverse_event_terms where trial_id = ?""", [g.nct_id]), key=repr)
    assert published == expected


def assert_categories_are_bounded_by_their_terms(con) -> None:
    """Independently of the SQL: bounds from the published terms of each category."""
    terms = defaultdict(list)
    for trial, group, category, affected, at_risk in rows(con, """
            select trial_id, group_id, harm_category, affected_count, at_risk_count
            from marts.fct_adverse_event_terms where harm_category <> 'death'"""):
        terms[(trial, group, category)].append((affected, at_risk))
    for trial, group, category, low, high, exact, at_risk in rows(con, """
            select trial_id, group_id, harm_category, affected_low, affected_high,
                   affected_count, at_risk_count
            from marts.fct_adverse_events
            where source = 'registry_results' and count_basis in ('single_term', 'term_bounds')
              and at_risk_count is not null"""):
        stated = terms[(trial, group, category)]
        counts = [a for a, _ in stated if a is not None]
        if not counts:
            continue
        expected_at_risk = max(r for _, r in stated if r is not None)
        expected_high = min(sum(counts) if len(counts) == len(stated) else expected_at_risk,
                            expected_at_risk)
        assert (low, high, at_risk) == (max(counts), expected_high, expected_at_risk), \
            (trial, group, category)
        assert exact == (low if low == high else None)


def assert_registry_counts_within_their_group(con) -> None:
    broken = rows(con, """
        select outcome_fact_id, n_events, n_analyzed from marts.fct_outcomes
        where source = 'registry_results' and n_events > n_analyzed""")
    assert not broken, f"counts above their group's participants analysed: {broken[:5]}"
    wrong_denominator = rows(con, """
        select f.outcome_fact_id, f.n_analyzed, g.participants_analyzed
        from marts.fct_outcomes f
        join staging.stg_ctgov__result_outcome_groups g
          on g.nct_id = f.trial_id and g.group_id = f.group_id
         and f.outcome_fact_id like 'registry:' || g.nct_id || ':om' || g.outcome_measure_index || ':%'
        where f.source = 'registry_results'
          and f.n_analyzed is distinct from g.participants_analyzed""")
    assert not wrong_denominator, wrong_denominator[:5]


def assert_safety_figures_are_proportions(con) -> None:
    broken = rows(con, """
        select therapy_class, diabetes_type, harm_category, participants_affected_low,
               participants_affected_high, participants_at_risk, proportion, ci_low, ci_high
        from marts.safety_signals
        where participants_affected_low > participants_affected_high
           or participants_affected_high > participants_at_risk
           or proportion < 0 or proportion > 1 or ci_low < 0 or ci_low > 1
           or ci_high < 0 or ci_high > 1 or ci_low > proportion or proportion > ci_high
           or (count_basis = 'exact' and participants_affected is null)""")
    assert not broken, f"safety figures out of range: {broken[:5]}"
