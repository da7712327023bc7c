"""Every model survives empty and partial inputs: the warehouse builds and publishes from no
source at all (the seeds only), from each source alone, and from live registry data with no
outcome sheet; every mart keeps its contract types and is exported to Parquet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.refresh import refresh_warehouse
from flows.seeds import read_seed
from flows.settings import reset_settings_cache
from tests.conftest import OUTCOMES_DIR, SNAPSHOT_DIR
from tests.helpers import assert_marts_keep_their_contracts, query
from tests.standin.corpus import HIDDEN_FROM_SEARCH, Corpus, live_corpus
from tests.standin.server import serve

pytestmark = pytest.mark.integration

# Made-up CTIS records (fixtures, not facts): the project ships no CTIS facts.
CTIS_FIXTURES = [
    {"ctNumber": "2023-500123-12-00", "ctTitle": "Fixture trial of islet cells in type 1 diabetes",
     "trialPhase": "Phase 1", "sponsor": "Fixture Sponsor",
     "detail": {"ctStatus": "Authorised", "startDateEU": "2023-05-02"}},
    {"ctNumber": "2024-500456-34-00", "ctTitle": "Fixture trial of mesenchymal stromal cells",
     "trialPhase": "Phase 2", "detail": {"ctStatus": "Ongoing"}},
]


def snapshot_with(tmp_path: Path, *sources: str) -> Path:
    target = tmp_path / "snapshot_subset"
    target.mkdir()
    for source in sources:
        shutil.copytree(SNAPSHOT_DIR / source, target / source)
    return target


def use(monkeypatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()


def assert_published(settings) -> None:
    assert settings.warehouse_path.exists()
    assert_marts_keep_their_contracts(settings.warehouse_path)
    marts = {name for (name,) in query(settings.warehouse_path,
                                       "select table_name from information_schema.tables "
                                       "where table_schema = 'marts'")}
    assert {p.stem for p in settings.marts_dir.glob("*.parquet")} == marts


def count(settings, table: str) -> int:
    return query(settings.warehouse_path, f"select count(*) from {table}")[0][0]


@pytest.mark.parametrize("sources, sheets, expected", [
    ((), False, {}),
    (("ctgov",), False, {"marts.dim_trials": 160, "marts.fct_outcomes": 0}),
    (("pubmed",), False, {"marts.dim_publications": 26, "marts.dim_trials": 0}),
    (("ictrp",), False, {"marts.dim_trials": 7, "staging.stg_ctgov__studies": 0}),
    ((), True, {"marts.fct_outcomes": 162, "marts.dim_trials": 0}),
], ids=["seeds-only", "ctgov-only", "pubmed-only", "ictrp-only", "outcome-sheet-only"])
def test_snapshot_source_alone_builds_and_publishes(pipeline_settings, tmp_path, monkeypatch,
                                                    sources, sheets, expected):
    """Why over 30 s: a refresh of its own (every model built and tested) on these inputs."""
    empty = tmp_path / "no_sheets"
    empty.mkdir()
    use(monkeypatch, BETACELL_SNAPSHOT_DIR=str(snapshot_with(tmp_path, *sources)),
        BETACELL_OUTCOMES_DIR=str(OUTCOMES_DIR if sheets else empty))
    from flows.settings import get_settings

    summary = refresh_warehouse(source="snapshot")
    settings = get_settings()
    assert_published(settings)
    assert summary["stale_sources"] == []
    for table, rows in expected.items():
        assert count(settings, table) == rows, table
    if not sources and not sheets:
        for mart in ("dim_trials", "dim_publications", "fct_outcomes", "therapy_outcome_comparison",
                     "safety_signals", "classification_review_queue"):
            assert count(settings, f"marts.{mart}") == 0, mart
        # the curated-links seed still names its trials: unresolved, with the reason
        unresolved = query(settings.warehouse_path,
                           "select referenced_by, unresolved_reason from marts.unresolved_references")
        assert unresolved and all(by == ["curated_link"] and reason for by, reason in unresolved)


@pytest.mark.parametrize("scenario", ["ctis-only", "europepmc-only", "live-registry-no-sheet"])
def test_live_source_alone_builds_and_publishes(pipeline_settings, tmp_path, monkeypatch,
                                                scenario):
    """Why over 30 s: a live refresh of its own (every model built and tested) on this input."""
    full = live_corpus()
    corpus = Corpus(search=[], registry={}, pubmed=[], europepmc=[], version=full.version)
    if scenario == "ctis-only":
        corpus.ctis = CTIS_FIXTURES
    elif scenario == "europepmc-only":
        corpus.europepmc = full.europepmc
    else:
        corpus = full
        corpus.pubmed, corpus.europepmc = [], []
    empty = tmp_path / "no_sheets"
    empty.mkdir()
    with serve(corpus) as (_, urls):
        use(monkeypatch, BETACELL_OUTCOMES_DIR=str(empty), **urls)
        from flows.settings import get_settings

        summary = refresh_warehouse(source="live")
    settings = get_settings()
    assert_published(settings)
    assert summary["stale_sources"] == []
    if scenario == "ctis-only":
        assert count(settings, "staging.stg_ctis__trials") == 2
        # CTIS-only trials are trials: in dim_trials, classified (or sent to review)
        trials = query(settings.warehouse_path, "select trial_id, registry, therapy_class, "
                       "highest_phase from marts.dim_trials order by trial_id")
        assert [(t, r, p) for t, r, _, p in trials] == [
            ("2023-500123-12-00", "EU CT", "PHASE1"), ("2024-500456-34-00", "EU CT", "PHASE2")]
        assert all(cls for _, _, cls, _ in trials)
    elif scenario == "europepmc-only":
        assert count(settings, "staging.stg_europepmc__records") == len(full.europepmc) > 10
        # Europe PMC records PubMed does not hold are publications of their own
        assert query(settings.warehouse_path, "select source, count(*) from "
                     "marts.dim_publications group by 1") == [("europepmc", len(full.europepmc))]
    else:
        outcomes = dict(query(settings.warehouse_path,
                              "select source, count(*) from marts.fct_outcomes group by 1"))
        assert set(outcomes) == {"registry_results"}  # NCT00763412's posted results only
        # the curated-links seed names hidden trials: fetched by id (referential closure)
        linked = {row["trial_id"] for row in read_seed("curated_publication_trial_links")}
        fetched = linked & set(HIDDEN_FROM_SEARCH)
        assert fetched and summary["fetched_by_id"] == {"ctgov": len(fetched)}
        assert count(settings, "marts.dim_trials") == len(full.search) + len(fetched)
