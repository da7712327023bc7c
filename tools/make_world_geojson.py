"""Build dashboards/assets/world_110m_countries.geojson, the country boundaries of the offline map.

Source: Natural Earth 1:110m Admin 0 countries (public domain), as shipped inside the geopandas
0.14.4 wheel (``geopandas/datasets/naturalearth_lowres/``; later geopandas releases dropped it).
The shapefile is read directly from the wheel (no GIS library needed); coordinates are rounded to
two decimals (about 1 km, plenty at 1:110m). Shells keep the shapefile's clockwise winding, which
is what plotly's geo maps expect (RFC 7946 counter-clockwise rings would fill the inverse).

usage: python tools/make_world_geojson.py path/to/geopandas-0.14.4-py3-none-any.whl
       (get the wheel with: pip download --no-deps geopandas==0.14.4)
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "dashboards" / "assets" / "world_110m_countries.geojson"
MEMBER = "geopandas/datasets/naturalearth_lowres/naturalearth_lowres"
DECIMALS = 2
# Natural Earth leaves iso_a3 = -99 for these; use their ISO (or Natural Earth ADM0) codes
MISSING_CODES = {"France": "FRA", "Norway": "NOR", "Kosovo": "XKX", "N. Cyprus": "CYN",
                 "Somaliland": "SOL"}


def dbf_rows(buffer: bytes, encoding: str) -> list[dict]:
    count, header_length, record_length = struct.unpack("<IHH", buffer[4:12])
    fields, offset = [], 32
    while buffer[offset] != 0x0D:
        name = buffer[offset:offset + 11].split(b"\0")[0].decode()
        fields.append((name, chr(buffer[offset + 11]), buffer[offset + 16]))
        offset += 32
    rows = []
    for index in range(count):
        start = header_length + index * record_length + 1  # skip the deletion flag
        row = {}
        for name, kind, length in fields:
            text = buffer[start:start + length].decode(encoding).strip()
            start += length
            row[name] = float(text) if kind in "NF" and text else text
        rows.append(row)
    return rows


def shp_rings(buffer: bytes):
    """Each record's rings [[lon, lat], ...] (polygon shape types 5, 15, 25)."""
    position = 100
    while position < len(buffer):
        _, length = struct.unpack(">ii", buffer[position:position + 8])
        content = buffer[position + 8:position + 8 + 2 * length]
        position += 8 + 2 * length
        shape_type = struct.unpack("<i", content[:4])[0]
        if shape_type == 0:
            yield []
            continue
        if shape_type not in (5, 15, 25):
            raise ValueError(f"not a polygon shapefile (shape type {shape_type})")
        parts_count, points_count = struct.unpack("<ii", content[36:44])
        parts = [*struct.unpack(f"<{parts_count}i", content[44:44 + 4 * parts_count]),
                 points_count]
        start = 44 + 4 * parts_count
        xy = struct.unpack(f"<{2 * points_count}d", content[start:start + 16 * points_count])
        points = [[round(xy[2 * k], DECIMALS), round(xy[2 * k + 1], DECIMALS)]
                  for k in range(points_count)]
        yield [points[parts[j]:parts[j + 1]] for j in range(parts_count)]


def signed_area(ring: list) -> float:
    return sum(x1 * y2 - x2 * y1
               for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True)) / 2


def polygons(rings: list) -> list:
    """Shapefile order: a clockwise ring starts a polygon, counter-clockwise ones are its holes."""
    out: list = []
    for ring in rings:
        if signed_area(ring) <= 0 or not out:
            out.append([ring])
        else:
            out[-1].append(ring)
    return out


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shp, dbf = archive.read(MEMBER + ".shp"), archive.read(MEMBER + ".dbf")
        encoding = archive.read(MEMBER + ".cpg").decode().strip() or "utf-8"  # the .dbf's
    features = []
    for row, rings in zip(dbf_rows(dbf, encoding), shp_rings(shp), strict=True):
        code = row["iso_a3"] if row["iso_a3"] != "-99" else MISSING_CODES[row["name"]]
        parts = polygons(rings)
        geometry = ({"type": "Polygon", "coordinates": parts[0]} if len(parts) == 1
                    else {"type": "MultiPolygon", "coordinates": parts})
        features.append({"type": "Feature", "id": code,
                         "properties": {"iso_a3": code, "name": row["name"]},
                         "geometry": geometry})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                              separators=(",", ":")))
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    print(f"wrote {OUT} ({len(features)} countries) from {Path(wheel).name} sha256 {digest}")


if __name__ == "__main__":
    main(sys.argv[1])
