"""An offline world map of counts per country (plotly geo, no network).

Boundaries come from ``dashboards/assets/world_110m_countries.geojson`` (Natural Earth 1:110m,
public domain; see assets/README.md). Country names as registries write them are matched to ISO
3166 alpha-3 codes here, not by plotly.js's name matcher.

plotly.js fetches ``<topojsonURL>/world_110m.json`` for every geo subplot, even a GeoJSON
choropleth with the base map hidden, and draws nothing when the fetch fails (offline, or in a
closed network). ``PLOT_CONFIG`` points that URL at an inline, empty topology: the appended file
name lands after ``#`` and is ignored, so the browser never leaves the page. Pass it as
``st.plotly_chart(..., config=PLOT_CONFIG)``.
"""

from __future__ import annotations

import json
import unicodedata
import urllib.parse
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import plotly.graph_objects as go

GEOJSON = Path(__file__).with_name("assets") / "world_110m_countries.geojson"
_EMPTY_TOPOLOGY = '{"type":"Topology","arcs":[],"objects":{}}'
PLOT_CONFIG = {"topojsonURL": "data:application/json," + urllib.parse.quote(_EMPTY_TOPOLOGY) + "#"}
CAPTION = "Boundaries: Natural Earth 1:110m (public domain)."

# registry spellings (ClinicalTrials.gov, ICTRP) that differ from Natural Earth's names
ALIASES = {
    "united states": "USA", "united states of america": "USA", "korea, republic of": "KOR",
    "republic of korea": "KOR", "south korea": "KOR",
    "korea, democratic people's republic of": "PRK", "iran, islamic republic of": "IRN",
    "iran (islamic republic of)": "IRN", "russian federation": "RUS", "viet nam": "VNM",
    "turkey": "TUR", "turkiye": "TUR", "taiwan": "TWN", "czech republic": "CZE",
    "czechia": "CZE", "syrian arab republic": "SYR", "lao people's democratic republic": "LAO",
    "moldova, republic of": "MDA", "tanzania, united republic of": "TZA",
    "congo, the democratic republic of the": "COD", "democratic republic of the congo": "COD",
    "congo": "COG", "cote d'ivoire": "CIV", "ivory coast": "CIV",
    "bosnia and herzegovina": "BIH", "dominican republic": "DOM",
    "central african republic": "CAF", "equatorial guinea": "GNQ",
    "macedonia, the former yugoslav republic of": "MKD", "north macedonia": "MKD",
    "bolivia, plurinational state of": "BOL", "venezuela, bolivarian republic of": "VEN",
    "palestinian territory, occupied": "PSE", "palestine, state of": "PSE",
    "brunei darussalam": "BRN", "swaziland": "SWZ", "eswatini": "SWZ",
    "libyan arab jamahiriya": "LBY", "united kingdom": "GBR", "great britain": "GBR",
    "china": "CHN", "people's republic of china": "CHN",
    "hong kong": "HKG", "hong kong sar": "HKG", "macao": "MAC", "macau": "MAC",
    "singapore": "SGP", "bahrain": "BHR", "malta": "MLT", "mauritius": "MUS",
    "antigua and barbuda": "ATG",
}
# no polygon at 1:110m: drawn as markers at these (approximate) centres
MARKERS = {"HKG": (22.32, 114.17), "SGP": (1.35, 103.82), "MAC": (22.20, 113.55),
           "BHR": (26.07, 50.55), "MLT": (35.90, 14.40), "MUS": (-20.30, 57.58),
           "ATG": (17.07, -61.80)}


def _key(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(ascii_name.casefold().replace("\u2019", "'").split())


@lru_cache(maxsize=1)
def world() -> dict:
    return json.loads(GEOJSON.read_text())


@lru_cache(maxsize=1)
def _codes() -> dict[str, str]:
    codes = {_key(f["properties"]["name"]): f["properties"]["iso_a3"] for f in world()["features"]}
    codes.update(ALIASES)
    return codes


def iso3(name: str | None) -> str | None:
    """The ISO alpha-3 code of a country name as a registry writes it (None when unknown)."""
    return _codes().get(_key(name)) if isinstance(name, str) and name.strip() else None


def country_map(names: Iterable[str], values: Iterable[int], *,
                value_label: str = "trials") -> tuple[go.Figure, list[str]]:
    """A choropleth of ``values`` by country name; returns the figure and the names it could not
    place. Names of one country ("Turkey", "Türkiye") are drawn as one place."""
    places: dict[str, tuple[list[str], int]] = {}
    unplaced = []
    for name, value in zip(names, values, strict=True):
        code = iso3(name)
        if code is None:
            unplaced.append(name)
            continue
        labels, total = places.get(code, ([], 0))
        places[code] = ([*labels, name], total + int(value))
    polygons = {f["properties"]["iso_a3"] for f in world()["features"]}
    shaded = {c: v for c, v in places.items() if c in polygons}
    dots = {c: v for c, v in places.items() if c not in polygons and c in MARKERS}
    unplaced += [n for c, (labels, _) in places.items() if c not in shaded and c not in dots
                 for n in labels]
    top = max([v for _, v in places.values()] or [1])
    background = {"type": "FeatureCollection", "features": [
        f for f in world()["features"] if f["properties"]["iso_a3"] not in {*shaded, "ATA"}]}
    data = {"type": "FeatureCollection", "features": [
        f for f in world()["features"] if f["properties"]["iso_a3"] in shaded]}
    figure = go.Figure()
    figure.add_trace(go.Choropleth(
        geojson=background, featureidkey="properties.iso_a3",
        locations=[f["properties"]["iso_a3"] for f in background["features"]],
        z=[0] * len(background["features"]), colorscale=[[0, "#eeeeee"], [1, "#eeeeee"]],
        showscale=False, hoverinfo="skip", marker_line_color="#aaaaaa", marker_line_width=0.5))
    figure.add_trace(go.Choropleth(
        geojson=data, featureidkey="properties.iso_a3", locations=list(shaded),
        z=[v for _, v in shaded.values()], text=[" / ".join(n) for n, _ in shaded.values()],
        zmin=0, zmax=top, colorscale="Blues", marker_line_color="#555555",
        marker_line_width=0.5, colorbar_title=value_label,
        hovertemplate="%{text}: %{z}<extra></extra>"))
    if dots:
        figure.add_trace(go.Scattergeo(
            lat=[MARKERS[c][0] for c in dots], lon=[MARKERS[c][1] for c in dots],
            text=[" / ".join(n) for n, _ in dots.values()],
            customdata=[v for _, v in dots.values()], showlegend=False,
            marker={"size": 8, "color": [v for _, v in dots.values()], "cmin": 0, "cmax": top,
                    "colorscale": "Blues", "line": {"width": 0.8, "color": "#333333"}},
            hovertemplate="%{text}: %{customdata}<extra></extra>"))
    figure.update_geos(visible=False, projection_type="natural earth", lataxis_range=[-58, 85])
    figure.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, height=450)
    return figure, unplaced
