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

from dashboards.forest_plot import square_size
from dashboards.presentation import interval_text, range_text, therapy_name
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


def figures_of(app: AppTest) -> list:
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


SCENARIO = ("verified_only", "include_overlapping", "randomised_only")


def mart_rows(path, outcome, definition, diabetes_type, window, flags):
    where = " and ".join(f"{'' if on else 'not '}{name}" for name, on in zip(SCENARIO, flags,
                                                                          strict=True))
    return rows(path, f"""
        select therapy_label, msc_source, k_cohorts, n_participants, n_events, estimate, ci_low,
               ci_high, pi_low, pi_high, caveats, cohort_estimates, cohort_ci_low,
               cohort_ci_high, cohort_weights
        from marts.therapy_outcome_comparison
        where outcome = '{outcome}' and definition_id = '{definition}'
          and diabetes_type = '{diabetes_type}' and window_id = '{window}' and {where}
        order by therapy_class, msc_source nulls first""")


def expected_table_row(want) -> dict:
    """The Estimates table's row for one mart row: the mart's numbers, written, not computed."""
    (label, source, k, n, events, estimate, low, high, pi_low, pi_high, caveats) = want[:11]
    return {"therapy": therapy_name(label, source), "k": k, "N": n, "events": events,
            "estimate (95 % CI)": interval_text(estimate, low, high),
            "prediction interval": range_text(pi_low, pi_high),
            "caveats": "; ".join(caveats)}


def shown_rows(app) -> list[dict]:
    table = app.table[0].value.reset_index()
    return [{"therapy": r["therapy"], "k": int(r["k"]), "N": int(r["N"]),
             "events": None if r["events"] != r["events"] else int(r["events"]),
             "estimate (95 % CI)": r["estimate (95 % CI)"],
             "prediction interval": r["prediction interval"], "caveats": r["caveats"]}
            for _, r in table.iterrows()]


def forest_marks(app) -> tuple[list, list, list]:
    """The forest plot's squares (x, size), diamonds (x span) and prediction lines (x span)."""
    figure = figures_of(app)[0]
    squares, diamonds, predictions = [], [], []
    for trace in figure.data:
        x = list(typed_array(trace.x)) if trace.x is not None else []
        if trace.mode == "markers" and trace.marker.symbol == "square":
            squares.append((x[0], trace.marker.size))
        elif trace.fill == "toself":
            diamonds.append((min(x), x[1], max(x)))
        elif trace.line.dash == "dot":
            predictions.append((x[0], x[1]))
    return squares, diamonds, predictions


@pytest.mark.parametrize("choice", [
    {},  # the headline view: insulin independence at the timepoint, T1D, 6-18 months
    {"definition": "ii_ever", "window": "last_followup"},
    {"definition": "ii_ever", "window": "last_followup", "toggles": (True, False, False)},
    {"diabetes_type": "T2D", "definition": "ii_last_followup", "window": "last_followup"},
    {"outcome": "graft_survival", "definition": "graft_function", "window": "m6_18"},
])
def test_therapy_comparison_shows_the_marts_figures_and_nothing_else(published, choice):
    app = run_page("1_Therapy_comparison.py")
    outcome = choice.get("outcome", "insulin_independence")
    if outcome != "insulin_independence":
        app.selectbox[0].set_value(outcome).run()
    definition = choice.get("definition", "ii_at_timepoint")
    app.selectbox[1].set_value(definition).run()
    diabetes_type = choice.get("diabetes_type", "T1D")
    app.selectbox[2].set_value(diabetes_type).run()
    toggles = choice.get("toggles", (False, False, False))
    for toggle, on in zip(app.toggle, toggles, strict=True):
        toggle.set_value(on)
    app.run()
    window = choice.get("window", "m6_18")
    app.radio[0].set_value(window).run()
    assert not app.exception, [e.value for e in app.exception]
    expected = mart_rows(published.warehouse, outcome, definition, diabetes_type, window, toggles)
    assert expected, "the choice should show something"
    assert shown_rows(app) == [expected_table_row(want) for want in expected]
    assert not any("nan" in row["therapy"].lower() for row in shown_rows(app))

    squares, diamonds, predictions = forest_marks(app)
    want_squares = [(x, w) for want in expected for x, w in zip(want[11], want[14], strict=True)]
    assert [x for x, _ in squares] == pytest.approx([x for x, _ in want_squares])
    assert [size for _, size in squares] == pytest.approx([square_size(w) for _, w in want_squares])
    pooled = [want for want in expected if want[2] > 1]
    flat = lambda pairs: [x for pair in pairs for x in pair]  # noqa: E731
    assert len(diamonds) == len(pooled)
    assert flat(diamonds) == pytest.approx(flat((w[6], w[5], w[7]) for w in pooled))
    with_prediction = [(w[8], w[9]) for w in expected if w[8] is not None]
    assert len(predictions) == len(with_prediction)
    assert flat(predictions) == pytest.approx(flat(with_prediction))


def test_dashboard_pages_read_only_marts_and_compute_no_statistics():
    sources = [p for p in (REPO_DIR / "dashboards").rglob("*.py") if p.name != "screenshots.py"]
    assert len(sources) >= 8
    for path in sources:
        text = path.read_text()
        for schema in ("raw.", "staging.", "intermediate.", "meta.", "snapshots."):
            assert f"from {schema}" not in text and f"join {schema}" not in text, (path, schema)
        for forbidden in ("statsmodels", "scipy", "spec_from_file_location", "int_pooled",
                          "combine_effects", "proportion_confint", "warehouse_path"):
            assert forbidden not in text, (path, forbidden)


def test_safety_shows_the_safety_mart_with_not_reported_apart(published):
    app = run_page("3_Safety.py")
    mart = rows(published.warehouse, """
        select therapy_class, diabetes_type, harm_category, participants_affected,
               participants_affected_low, participants_affected_high, participants_at_risk,
               ci_low, ci_high, is_not_reported, count_basis
        from marts.safety_signals order by therapy_class, diabetes_type, harm_category""")
    labels = dict(rows(published.warehouse,
                       "select distinct therapy_class, class_label from marts.dim_therapies"))
    shown = app.dataframe[0].value
    types = [None if v != v else v for v in shown["diabetes_type"]]  # NaN: type not stated
    figures = dict(zip(zip(shown["therapy"], types, shown["harm"], strict=True),
                       shown["figure"], strict=True))
    assert len(figures) == len(mart)
    for cls, dtype, harm, affected, lo, hi, at_risk, low, high, not_reported, basis in mart:
        expected = ("NR" if not_reported
                    else f"{lo}-{hi}/{at_risk} bounds ({low:.2f}–{high:.2f})" if basis == "bounds"
                    else f"{affected}/{at_risk} ({low:.2f}–{high:.2f})")
        assert figures[(labels[cls], dtype, harm.replace("_", " "))] == expected
    nr_layer, rates = figures_of(app)[0].data
    nr = typed_array(nr_layer.z)
    for y, row in enumerate(rates.text):
        for x, cell in enumerate(row):
            assert (cell == "NR") == (nr[y][x] == 1)  # NR has its own colour, never a 0


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


def test_country_map_draws_offline_from_the_shipped_boundaries(published):
    from dashboards.country_map import iso3

    app = run_page("2_Trial_landscape.py")
    (chart,) = [c for c in app.get("plotly_chart") if '"choropleth"' in c.proto.spec]
    # plotly.js fetches <topojsonURL>/world_110m.json for any geo plot: it must be inline
    assert json.loads(chart.proto.config)["topojsonURL"].startswith("data:application/json,")
    assert "http://" not in chart.proto.spec and "https://" not in chart.proto.spec
    figure = pio.from_json(chart.proto.spec)
    background, shaded, *dots = figure.data
    assert len(background.geojson["features"]) + len(shaded.geojson["features"]) >= 170
    expected: dict[str, int] = {}
    for country, trials in rows(published.warehouse, """
            select country, count(distinct trial_id) from marts.dim_trials,
                   unnest(countries) as c(country) group by 1"""):
        expected[iso3(country)] = expected.get(iso3(country), 0) + trials
    assert None not in expected, "every country of the snapshot has a place on the map"
    drawn = dict(zip(shaded.locations, typed_array(shaded.z).tolist(), strict=True))
    if dots:
        drawn |= {iso3(text.split(" / ")[0]): value
                  for text, value in zip(dots[0].text, typed_array(dots[0].customdata).tolist(),
                                         strict=True)}
    assert drawn == expected
    assert drawn["CHN"] > 0 and drawn["USA"] > 0
    assert not any("Not on the map" in c.value for c in app.caption)


def test_quality_page_lists_sheet_warnings_unresolved_and_stale_sources(published):
    from flows.outcomes import read_sheet, validate_rows

    app = run_page("6_Data_quality.py")
    sheet = published.outcomes / "published_outcomes.csv"
    sheet_rows = read_sheet(sheet)
    _, problems = validate_rows(sheet_rows, sheet.name)
    # the snapshot's sheet warns once per row whose citation is a URL only (no PMID, no DOI)
    url_only = [r for r in sheet_rows if not r["pmid"] and not r["doi"]]
    assert len(problems) == len(url_only) > 0
    mart = rows(published.warehouse, "select severity, sheet_row, sheet_column, problem "
                "from marts.outcome_sheet_problems order by problem_number")
    assert [(row, column, problem) for _, row, column, problem in mart] == \
        [(p.row, p.column, p.problem) for p in problems]
    shown = next(d.value for d in app.dataframe
                 if list(d.value.columns) == ["severity", "sheet_row", "sheet_column", "problem"])
    assert [tuple(r) for r in shown.itertuples(index=False)] == mart
    assert any(f"{len(problems)} warning(s)" in c.value for c in app.caption)

    unresolved = rows(published.warehouse,
                      "select registry_id from marts.unresolved_references order by 1")
    shown = next(d.value for d in app.dataframe if "unresolved_reason" in d.value.columns)
    assert sorted(shown["registry_id"]) == [r for (r,) in unresolved] and unresolved
    stale = rows(published.warehouse, "select count(*) from marts.source_status where is_stale")
    assert stale == [(0,)] and any("No stale source" in c.value for c in app.caption)


def test_data_docs_are_served_over_http_by_the_app(published):
    import httpx

    app = run_page("6_Data_quality.py")
    (link,) = [m.value for m in app.markdown if "Open the Data Docs" in m.value]
    url = link.split("](", 1)[1].split(")", 1)[0]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/data_docs/index.html")
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()


@pytest.mark.parametrize("page", ["../Overview.py", *sorted(p.name for p in PAGES.glob("*.py"))])
def test_pages_raise_no_deprecation_warning(published, page):
    import logging

    # Streamlit logs deprecations (use_container_width, …) through this logger, and only logs
    # most of them, so the app shows nothing: listen to the log
    logged: list[logging.LogRecord] = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = logged.append
    logger = logging.getLogger("streamlit.deprecation_util")
    logger.addHandler(listener)
    try:
        run_page(page)
    finally:
        logger.removeHandler(listener)
    assert [r.getMessage() for r in logged] == []
