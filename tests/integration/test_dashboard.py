"""Every dashboard page renders on the snapshot warehouse, and its key figures equal the marts;
BI tools can read the published file through duckdb-engine read-only."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
import sqlalchemy
from streamlit.testing.v1 import AppTest

from flows.settings import REPO_DIR, reset_settings_cache

pytestmark = pytest.mark.integration
PAGES = REPO_DIR / "dashboards" / "pages"


@pytest.fixture
def published(snapshot_warehouse, monkeypatch):
    monkeypatch.setenv("BETACELL_DATA_DIR", str(snapshot_warehouse.parent))
    reset_settings_cache()
    yield snapshot_warehouse
    reset_settings_cache()


def run_page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def scalar(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchone()[0]
    finally:
        con.close()


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_overview(published):
    app = run_page("../Overview.py")
    assert metric(app, "Trials") == str(scalar(published, "select count(*) from marts.dim_trials"))
    assert metric(app, "Publications") == str(
        scalar(published, "select count(*) from marts.dim_publications"))
    assert metric(app, "Outcome rows") == str(
        scalar(published, "select count(*) from marts.fct_outcomes"))


def test_therapy_comparison_matches_the_mart(published):
    app = run_page("1_Therapy_comparison.py")
    table = app.dataframe[0].value
    con = duckdb.connect(str(published), read_only=True)
    expected = con.sql(
        "select therapy_class, k_studies, n_patients, pooled_estimate from "
        "marts.therapy_outcome_comparison where outcome = 'insulin_independence' and "
        "measure = 'proportion' and k_studies > 0").fetchall()
    con.close()
    by_class: dict[str, list] = {}
    for cls, k, n, estimate in expected:  # the mart splits by diabetes type and MSC source
        by_class.setdefault(cls, []).append((k, n, estimate))
    for _, row in table.iterrows():
        parts = by_class[row["therapy_class"]]
        assert row["N"] == sum(n for _, n, _ in parts)
        if len(parts) == 1:
            assert row["estimate"] == pytest.approx(parts[0][2], abs=1e-3)
    app.toggle[1].set_value(True).run()  # include overlapping cohorts
    assert not app.exception


@pytest.mark.parametrize("page", ["2_Trial_landscape.py", "3_Safety.py", "4_Publications.py",
                                  "5_Results_reporting.py", "6_Data_quality.py"])
def test_page_renders(published, page):
    app = run_page(page)
    if page == "2_Trial_landscape.py":
        assert metric(app, "Trials") == str(
            scalar(published, "select count(*) from marts.dim_trials"))
    if page == "4_Publications.py":
        assert metric(app, "Publications") == str(
            scalar(published, "select count(*) from marts.dim_publications"))
    if page == "5_Results_reporting.py":
        assert metric(app, "Overdue > 24 months") == str(scalar(
            published, "select count(*) from marts.results_reporting where is_overdue_24_months"))


def test_bi_tools_read_the_published_file_read_only(published):
    expected = scalar(published, "select count(*) from marts.dim_trials")
    engine = sqlalchemy.create_engine(f"duckdb:///{published}",
                                      connect_args={"read_only": True})
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text(
            "select therapy_class, count(*) from marts.dim_trials group by 1")).fetchall()
        assert sum(n for _, n in rows) == expected
        # another process (the dashboard, a second BI tool) reads at the same time
        other = subprocess.run(
            [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], "
             "read_only=True); print(con.sql('select count(*) from marts.dim_trials')"
             ".fetchone()[0])",
             str(published)], capture_output=True, text=True, check=True)
        assert int(other.stdout) == expected
    engine.dispose()
