"""Configuration is checked before anything starts: one clear error naming the key."""

from __future__ import annotations

import pytest

from flows.errors import BetacellError
from flows.preflight import check_configuration
from flows.settings import REPO_DIR, Settings, get_settings, reset_settings_cache
from flows.sources.topic import load_topic

TOPIC = REPO_DIR / "flows" / "topic.toml"


def write(tmp_path, text: str):
    path = tmp_path / "topic.toml"
    path.write_text(text)
    return path


def test_the_shipped_topic_is_valid():
    topic = load_topic(TOPIC)
    assert "type 1 diabetes" in topic.conditions and topic.ctis_medical_condition == "diabetes"


def test_a_string_where_a_list_belongs_names_the_key(tmp_path):
    path = write(tmp_path, '[ctgov]\nconditions = "diabetes"\ninterventions = ["islet"]\n')
    with pytest.raises(BetacellError, match=r"ctgov\.conditions: Input should be a valid list"):
        load_topic(path)


@pytest.mark.parametrize("text, key", [
    ('[ctgov]\nconditions = ["diabetes", 3]\n', "ctgov.conditions.1"),
    ('[ctgov]\nconditions = ["x"]\nconditons = ["typo"]\n', "ctgov.conditons"),
    ('[pubmed]\nstart_date = "yesterday"\n[ctgov]\nterms = ["x"]\n', "pubmed.start_date"),
])
def test_wrong_types_and_unknown_keys_are_errors(tmp_path, text, key):
    with pytest.raises(BetacellError, match=key.replace(".", r"\.")):
        load_topic(write(tmp_path, text))


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(BetacellError, match="not valid TOML"):
        load_topic(write(tmp_path, "[ctgov\n"))
    with pytest.raises(BetacellError, match="does not exist"):
        load_topic(tmp_path / "absent.toml")


def test_a_topic_that_would_fetch_the_whole_registry_is_refused(tmp_path):
    with pytest.raises(BetacellError, match="whole registry"):
        load_topic(write(tmp_path, '[topic]\nname = "empty"\n'))


def test_fingerprint_changes_with_what_is_searched_not_with_the_name():
    topic = load_topic(TOPIC)
    renamed = topic.model_copy(update={"name": "other", "version": "2"})
    widened = topic.model_copy(update={"interventions": (*topic.interventions, "organoid")})
    assert renamed.fingerprint == topic.fingerprint != widened.fingerprint


def test_an_unwritable_data_directory_is_refused_before_anything_starts(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a directory")
    with pytest.raises(BetacellError, match="not writable \\(BETACELL_DATA_DIR\\)"):
        check_configuration(Settings(data_dir=blocked / "data"), "snapshot")


def test_an_unknown_source_and_a_missing_snapshot_are_refused(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", snapshot_dir=tmp_path / "nowhere")
    with pytest.raises(BetacellError, match="unknown source 'cloud'"):
        check_configuration(settings, "cloud")
    with pytest.raises(BetacellError, match="snapshot directory .* does not exist"):
        check_configuration(settings, "snapshot")


def test_bad_settings_name_the_variable(monkeypatch):
    monkeypatch.setenv("BETACELL_MAX_REJECT_SHARE", "lots")
    reset_settings_cache()
    try:
        with pytest.raises(BetacellError, match="BETACELL_MAX_REJECT_SHARE"):
            get_settings()
    finally:
        monkeypatch.delenv("BETACELL_MAX_REJECT_SHARE")
        reset_settings_cache()


def test_list_settings_take_commas_or_json(monkeypatch):
    monkeypatch.setenv("BETACELL_CRITICAL_SOURCES", "ctgov, pubmed")
    monkeypatch.setenv("BETACELL_SOURCE_RETRY_DELAYS_SECONDS", "[5, 10]")
    reset_settings_cache()
    try:
        settings = get_settings()
        assert settings.critical_sources == ["ctgov", "pubmed"]
        assert settings.source_retry_delays_seconds == [5, 10]
    finally:
        reset_settings_cache()


def test_critical_sources_must_be_known(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", critical_sources=["ctgov", "pubmedd"])
    with pytest.raises(BetacellError, match=r"unknown source\(s\) \['pubmedd'\]"):
        check_configuration(settings, "live")
