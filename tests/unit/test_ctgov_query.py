from __future__ import annotations

from datetime import date

from flows.settings import PACKAGE_DIR
from flows.sources.ctgov.client import build_search_params, essie_any
from flows.sources.topic import Topic, load_topic


def topic(**kw) -> Topic:
    base = dict(
        name="t",
        version="1",
        conditions=("type 1 diabetes", "T1DM"),
        interventions=("stem cell", "islet"),
        terms=(),
        exclusions=(),
        bulk_condition_patterns=(),
        bulk_intervention_patterns=(),
    )
    base.update(kw)
    return Topic(**base)


def test_essie_quotes_phrases_and_or_joins():
    assert essie_any(("type 1 diabetes", "T1DM")) == '("type 1 diabetes" OR T1DM)'
    assert essie_any(("islet",)) == "islet"
    assert essie_any(('say "hi"',)) == '"say hi"'
    assert essie_any(()) == ""


def test_search_params_full_and_incremental():
    full = build_search_params(topic(), None, 1000)
    assert full == {
        "format": "json",
        "pageSize": "1000",
        "query.cond": '("type 1 diabetes" OR T1DM)',
        "query.intr": '("stem cell" OR islet)',
    }
    incremental = build_search_params(topic(), date(2025, 1, 13), 1000)
    assert incremental["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2025-01-13,MAX]"


def test_exclusions_are_negated_in_the_intervention_area():
    params = build_search_params(topic(exclusions=("islet autoantibody",)), None)
    assert params["query.intr"] == '("stem cell" OR islet) NOT "islet autoantibody"'


def test_shipped_topic_file_loads():
    shipped = load_topic(PACKAGE_DIR / "topic.toml")
    assert "type 1 diabetes" in shipped.conditions
    assert shipped.bulk_condition_patterns
    assert len(shipped.fingerprint) == 16
