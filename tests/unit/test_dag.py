"""The dbt DAG runs forward (tools/check_dag.py, run here so `make test` enforces it)."""

from __future__ import annotations

from pathlib import Path

from flows.settings import REPO_DIR
from tools.check_dag import main, violations


def test_the_project_has_no_backwards_reference():
    problems, _ = violations(REPO_DIR / "dbt_project")
    assert problems == []


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_check_fails_on_each_kind_of_backwards_reference(tmp_path):
    write(tmp_path / "models/staging/x/base_x__all.sql", "select * from {{ source('raw', 'x') }}")
    write(tmp_path / "models/staging/x/stg_x__a.sql", "select * from {{ ref('base_x__all') }}")
    write(tmp_path / "models/staging/x/stg_x__b.sql", "select * from {{ ref('stg_x__a') }}")
    write(tmp_path / "models/intermediate/int_a.sql", "select * from {{ ref('fct_a') }}")
    write(tmp_path / "models/marts/fct_a.sql",
          "select * from {{ ref('stg_x__a') }} join {{ source('raw', 'x') }}")
    (tmp_path / "seeds").mkdir()
    (tmp_path / "snapshots").mkdir()
    problems, skips = violations(tmp_path)
    assert sorted(problems) == [
        "models/intermediate/int_a.sql: intermediate model reads marts model fct_a (backwards)",
        "models/marts/fct_a.sql: marts model reads a source directly (only staging reads sources)",
        "models/staging/x/stg_x__b.sql: staging model reads staging model stg_x__a (backwards)",
    ]
    assert skips == ["models/marts/fct_a.sql: marts model reads staging model stg_x__a "
                     "(skips the intermediate layer)"]
    assert main(["check_dag", str(tmp_path)]) == 1
