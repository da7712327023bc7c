"""Every mart declares its primary key, or says in ``meta.grain`` why it has none; the README's
sentence about keys (section "BI tools and analysts") names exactly those marts."""

from __future__ import annotations

import re

import yaml

from flows.settings import REPO_DIR

MARTS = REPO_DIR / "dbt_project" / "models" / "marts"
README = (REPO_DIR / "README.md").read_text()
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9}


def marts() -> dict[str, dict]:
    models = {}
    for path in sorted(MARTS.glob("_*.yml")):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            models[model["name"]] = model
    return models


def primary_key(model: dict) -> list[str]:
    for constraint in model.get("constraints") or []:
        if constraint.get("type") == "primary_key":
            return list(constraint["columns"])
    return [c["name"] for c in model.get("columns", [])
            if any(k.get("type") == "primary_key" for k in c.get("constraints") or [])]


def test_every_mart_has_a_key_or_explains_its_grain():
    models = marts()
    assert len(list(MARTS.glob("*.sql"))) == len(models), "a mart without its yml entry"
    unexplained = [name for name, model in models.items()
                   if not primary_key(model) and not (model.get("meta") or {}).get("grain")]
    assert unexplained == []
    for name, model in models.items():  # a key's columns are never NULL
        if key := primary_key(model):
            columns = {c["name"]: c for c in model["columns"]}
            nullable = [c for c in key if not any(
                k.get("type") in {"not_null", "primary_key"}
                for k in columns[c].get("constraints") or [])]
            assert nullable == [] or len(key) == 1, (name, nullable)


def test_the_readme_counts_and_names_the_marts_without_a_key():
    models = marts()
    keyless = sorted(name for name, model in models.items() if not primary_key(model))
    claim = re.search(r"(\d+) of the (\d+) marts declare theirs", README)
    assert claim, "the README's sentence about the marts' keys is gone"
    assert (int(claim.group(1)), int(claim.group(2))) == (len(models) - len(keyless), len(models))
    others = re.search(r"The other (\w+) have a grain but no key(.+?)\n\S*`tests/unit/test_marts_keys",
                       README, re.S)
    assert others, "the README no longer lists the marts without a key"
    assert NUMBERS.get(others.group(1), -1) == len(keyless)
    named = sorted(set(re.findall(r"`(\w+)`\s+\(one\s+row", others.group(2))))
    assert named == keyless
