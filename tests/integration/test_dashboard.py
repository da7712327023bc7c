"""Every dashboard page renders on the session warehouse and the figures it shows equal the
marts (or the quality reports they come from); BI tools read the published file read-only."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import duckdb
import numpy as np
import plotly.io as pio
import pytest
import sqlalchemy
from streamlit.testing.v1 import AppTest

from flows.settings import REPO_DIR, reset_settings_cache

pytestmark = pytest.mark.integration
PAGES = REPO_DIR / "dashboards" / "pages"


@pytest.fixture
def published(built_warehouse, monkeypatch):
    monkeypatch.setenv("BETACELL_DATA_DIR", str(built_warehouse.data))
    # `streamlit run dashboards/Overview.py` puts the entry script's folder on sys.path
    monkeypatch.syspath_prepend(str(REPO_DIR / "dashboards"))
    reset_settings_cache()
    yield built_warehouse
    reset_settings_cache()


def run_page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / name), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def rows(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def scalar(path, sql):
    return rows(path, sql)[0][0]


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def figures(app: AppTest) -> list:
    return [pio.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]


def typed_array(value):
    """plotly's JSON encodes numeric arrays as {dtype, bdata (base64), shape}."""
    if not isinstance(value, dict):
        return np.asarray(value)
    shape = tuple(int(n) for n in str(value.get("shape", "-1")).split(","))
    return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)


def test_overview(published):
    path = published.warehouse
    app = run_page("../Overview.py")
    assert metric(app, "Trials") == str(scalar(path, "select count(*) from marts.dim_trials"))
    assert metric(app, "Publications") == str(
        scalar(path, "select count(*) from marts.dim_publications"))
    assert metric(app, "Outcome rows") == str(
        scalar(path, "select count(*) from marts.fct_outcomes"))
    assert metric(app, "Therapy classes with trials") == str(
        scalar(path, "select count(distinct therapy_class) from marts.dim_trials"))


@pytest.mark.parametrize("diabetes_type", ["T1D", "T2D"])
def test_therapy_comparison_shows_the_marts_pooled_figures(published, diabetes_type):
    app = run_page("1_Therapy_comparison.py")
    app.multiselect[0].set_value([diabetes_type]).run()
    assert not app.exception
    table = app.dataframe[0].value  # shown rounded to 3 decimals
    assert len(table) > 0
    mart = {cls: (k, n, est, low, high) for cls, k, n, est, low, high in rows(
        published.warehouse,
        f"""select therapy_class, k_studies, n_patients, pooled_estimate, ci_low, ci_high
            from marts.therapy_outcome_comparison
            where outcome = 'insulin_independence' and measure = 'proportion'
              and diabetes_type = '{diabetes_type}' and k_studies > 0""")}
    assert set(table["therapy_class"]) == set(mart)
    for _, shown in table.iterrows():
        k, n, estimate, low, high = mart[shown["therapy_class"]]
        assert (shown["k"], shown["N"]) == (k, n), shown["therapy_class"]
        assert shown["estimate"] == pytest.approx(estimate, abs=6e-4)
        assert shown["ci_low"] == pytest.approx(low, abs=6e-4)
        assert shown["ci_high"] == pytest.approx(high, abs=6e-4)


def test_safety_shows_the_safety_mart(published):
    app = run_page("3_Safety.py")
    mart = rows(published.warehouse, """
        select therapy_class, harm_category, studies_reporting, studies_reporting_qualitatively,
               studies_not_reporting, participants_affected, participants_at_risk
        from marts.safety_signals order by therapy_class, harm_category""")
    shown = app.dataframe[0].value
    as_tuples = [tuple(None if v != v else v for v in row)  # NaN -> None
                 for row in shown.itertuples(index=False)]
    assert as_tuples == mart
    (heatmap,) = figures(app)
    z = typed_array(heatmap.data[0].z)
    cells = {(y, x): z for y, row in zip(heatmap.data[0].y, z, strict=True)
             for x, z in zip(heatmap.data[0].x, row, strict=True)}
    for therapy_class, harm, reporting, *_ in mart:
        assert cells[(therapy_class, harm)] == reporting


def test_data_quality_shows_the_gate_reports_and_rejects(published):
    app = run_page("6_Data_quality.py")
    quality = published.data / "quality"
    for gate in ("raw", "mart"):
        report = json.loads((quality / f"{gate}_gate_latest.json").read_text())
        assert any(f"{report['expectations']} expectations in {report['checks']} checks"
                   in caption.value for caption in app.caption)
    shown = app.dataframe[-1].value
    expected = rows(published.warehouse, "select source, run_id, source_file, source_line, "
                    "record_id, reason from raw.rejected_records order by rejected_at desc")
    assert len(expected) == 1
    assert [tuple(None if v != v else v for v in r) for r in shown.itertuples(index=False)] \
        == expected


@pytest.mark.parametrize("page, label, sql", [
    ("2_Trial_landscape.py", "Trials", "select count(*) from marts.dim_trials"),
    ("4_Publications.py", "Publications", "select count(*) from marts.dim_publications"),
    ("5_Results_reporting.py", "Overdue > 24 months",
     "select count(*) from marts.results_reporting where is_overdue_24_months"),
    ("5_Results_reporting.py", "Completed / terminated trials",
     "select count(*) from marts.results_reporting"),
])
def test_page_metric_equals_the_mart(published, page, label, sql):
    app = run_page(page)
    assert metric(app, label) == str(scalar(published.warehouse, sql))


def test_bi_tools_read_the_published_file_read_only(published):
    path = published.warehouse
    expected = scalar(path, "select count(*) from marts.dim_trials")
    engine = sqlalchemy.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
    with engine.connect() as connection:
        result = connection.execute(sqlalchemy.text(
            "select therapy_class, count(*) from marts.dim_trials group by 1")).fetchall()
        assert sum(n for _, n in result) == expected
        # another process (the dashboard, a second BI tool) reads at the same time
        other = subprocess.run(
            [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], "
             "read_only=True); print(con.sql('select count(*) from marts.dim_trials')"
             ".fetchone()[0])",
             str(path)], capture_output=True, text=True, check=True)
        assert int(other.stdout) == expected
    engine.dispose()
