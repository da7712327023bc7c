"""The PRISMA 2020 flow diagram, drawn from ``marts.prisma_flow`` as a standalone SVG.

The layout is the PRISMA 2020 template for reviews that searched registers and databases and
also used other methods: an identification / screening / included band on the left, the
searches' column with the boxes of records removed or excluded beside it, and the "other
methods" column (the curated outcome sheets) on the right, joining at "studies included". The
retrieval boxes of the template ("reports sought", "assessed for eligibility") are left out:
Betacell screens registry records by rules, not full texts. Only the mart's numbers are drawn;
nothing is computed here but sums of its rows.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import duckdb

FONT = "font-family='Helvetica, Arial, sans-serif'"
LINE_HEIGHT = 15
PADDING = 10
CHAR_WIDTH = 6.4  # average width of a 11 px Helvetica character, for wrapping
REGISTERS = ("ClinicalTrials.gov", "ICTRP", "EU CTIS")
DATABASES = ("PubMed", "Europe PMC")


@dataclass
class Box:
    x: float
    y: float
    width: float
    lines: list[str]
    bold_first: bool = True
    fill: str = "#ffffff"

    @property
    def height(self) -> float:
        return len(self.lines) * LINE_HEIGHT + 2 * PADDING

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass
class Diagram:
    width: float
    boxes: list[Box] = field(default_factory=list)
    arrows: list[tuple[float, float, float, float]] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)
    bands: list[tuple[str, float, float]] = field(default_factory=list)

    def box(self, x: float, y: float, width: float, text: Iterable[str], **style) -> Box:
        lines = [wrapped for line in text for wrapped in _wrap(line, width)]
        made = Box(x, y, width, lines, **style)
        self.boxes.append(made)
        return made

    def arrow(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.arrows.append((x1, y1, x2, y2))

    def side_arrow(self, source: Box, target: Box) -> None:
        """From the right edge of ``source`` to the left edge of ``target``: straight across
        when their heights overlap, else across, down and across (an elbow)."""
        y = target.y + target.height / 2
        if source.y + 5 <= y <= source.bottom - 5:
            self.arrow(source.x + source.width, y, target.x, y)
            return
        start_y = source.y + source.height / 2
        elbow_x = (source.x + source.width + target.x) / 2
        self.lines += [(source.x + source.width, start_y, elbow_x, start_y),
                       (elbow_x, start_y, elbow_x, y)]
        self.arrow(elbow_x, y, target.x, y)

    @property
    def height(self) -> float:
        return max(b.bottom for b in self.boxes) + 20


def _wrap(line: str, width: float) -> list[str]:
    indent = " " * (len(line) - len(line.lstrip(" ")))
    return textwrap.wrap(line, max(12, int((width - 2 * PADDING) / CHAR_WIDTH)),
                         initial_indent="", subsequent_indent=indent + "  ",
                         break_long_words=True, drop_whitespace=False) or [""]


def _total(rows: list[Mapping], stage: str, **equal: str) -> int:
    return sum(int(r["count"]) for r in rows
               if r["stage"] == stage and all(r[k] == v for k, v in equal.items()))


def _by_source(rows: list[Mapping], stage: str, sources: Iterable[str]) -> list[str]:
    return [f"  {source} (n = {_total(rows, stage, source=source)})" for source in sources]


def _reasons(rows: list[Mapping], stage: str) -> list[str]:
    return [f"  {r['reason']} (n = {r['count']})" for r in rows if r["stage"] == stage]


def prisma_svg(rows: Iterable[Mapping], title: str = "") -> str:
    """The PRISMA 2020 diagram of one version's ``marts.prisma_flow`` rows."""
    rows = list(rows)
    d = Diagram(width=1180)
    band_x, main_x, side_x, other_x = 10, 60, 470, 830
    main_w, side_w, other_w = 370, 320, 340
    top = 50 if title else 20
    header = d.box(main_x, top, side_x + side_w - main_x,
                   ["Identification of studies via registers and databases"], fill="#fde9c4")
    d.box(other_x, top, other_w, ["Identification of studies via other methods"],
          fill="#e0e0e0")

    identification_top = header.bottom + 25
    identified = d.box(main_x, identification_top, main_w, [
        "Records identified from:",
        f"Registers (n = {sum(_total(rows, 'identified', source=s) for s in REGISTERS)}):",
        *_by_source(rows, "identified", REGISTERS),
        f"Databases (n = {sum(_total(rows, 'identified', source=s) for s in DATABASES)}):",
        *_by_source(rows, "identified", DATABASES)])
    duplicates = [f"  {r['source']}: {r['reason']} (n = {r['count']})" for r in rows
                  if r["stage"] == "duplicates_removed" and int(r["count"]) > 0]
    removed = d.box(side_x, identification_top, side_w, [
        "Records removed before screening:",
        f"Duplicate records (n = {_total(rows, 'duplicates_removed')})"
        + (":" if duplicates else ""), *duplicates])
    d.side_arrow(identified, removed)
    other_identified = d.box(other_x, identification_top, other_w, [
        "Studies identified from:",
        f"Curated outcome sheets (n = {_total(rows, 'identified', path='other methods')})",
        *[r["reason"] for r in rows if r["stage"] == "identified"
          and r["path"] == "other methods"]], bold_first=True)

    screening_top = max(identified.bottom, removed.bottom, other_identified.bottom) + 40
    screened = d.box(main_x, screening_top, main_w, [
        "Records screened (by the classifier):",
        f"  trials (n = {_total(rows, 'screened', record_type='trial')})",
        f"  publications (n = {_total(rows, 'screened', record_type='publication')})"])
    d.arrow(main_x + main_w / 2, identified.bottom, main_x + main_w / 2, screened.y)
    excluded = d.box(side_x, screening_top, side_w, [
        f"Records excluded (n = {_total(rows, 'excluded')}):", *_reasons(rows, "excluded")])
    review = d.box(side_x, excluded.bottom + 15, side_w, [
        f"Sent to a curator's review (n = {_total(rows, 'sent_to_review')}):",
        *_reasons(rows, "sent_to_review")], fill="#fff7e6")
    d.side_arrow(screened, excluded)
    d.side_arrow(screened, review)

    included_top = max(screened.bottom, review.bottom) + 40
    registers_included = _total(rows, "included", path="registers and databases")
    others_included = _total(rows, "included", path="other methods")
    included = d.box(main_x, included_top, main_w, [
        f"Studies included in review (n = {registers_included + others_included}):",
        f"  registry trials (n = {registers_included})",
        f"  from the curated outcome sheets (n = {others_included})",
        f"Reports of included studies (n = {_total(rows, 'reports_of_included')})"],
        fill="#e6f2e6")
    d.arrow(main_x + main_w / 2, screened.bottom, main_x + main_w / 2, included.y)
    other_included = d.box(other_x, included_top, other_w, [
        f"Studies included (n = {others_included})",
        *[r["reason"] for r in rows if r["stage"] == "included" and r["path"] == "other methods"]])
    d.arrow(other_x + other_w / 2, other_identified.bottom, other_x + other_w / 2,
            other_included.y)
    d.arrow(other_x, other_included.y + 20, main_x + main_w, included.y + 20)

    with_data = d.box(main_x, included.bottom + 40, main_w, [
        f"Studies with outcome data (n = {_total(rows, 'with_outcome_data')}):",
        f"  included registry trials (n = "
        f"{_total(rows, 'with_outcome_data', path='registers and databases')})",
        f"  from the curated outcome sheets (n = "
        f"{_total(rows, 'with_outcome_data', path='other methods')})"], fill="#e6f2e6")
    d.arrow(main_x + main_w / 2, included.bottom, main_x + main_w / 2, with_data.y)
    headline = [r for r in rows if r["stage"] == "in_headline_comparison"]
    comparisons = d.box(main_x, with_data.bottom + 40, side_x + side_w - main_x, [
        f"Studies in each headline comparison ({len(headline)} comparisons):",
        *[f"  {r['reason']}: k = {r['count']}" for r in headline]], fill="#e6f2e6")
    d.arrow(main_x + main_w / 2, with_data.bottom, main_x + main_w / 2, comparisons.y)

    d.bands = [("Identification", identification_top, screening_top - 20),
               ("Screening", screening_top, included_top - 20),
               ("Included", included_top, comparisons.bottom)]
    return _render(d, band_x, title)


def _render(d: Diagram, band_x: float, title: str) -> str:
    height = d.height
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{d.width:.0f}' "
           f"height='{height:.0f}' viewBox='0 0 {d.width:.0f} {height:.0f}' {FONT} "
           "font-size='11'>",
           "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
           "markerHeight='7' orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' "
           "fill='#333'/></marker></defs>",
           f"<rect width='{d.width:.0f}' height='{height:.0f}' fill='#ffffff'/>"]
    if title:
        out.append(f"<text x='{d.width / 2:.0f}' y='28' text-anchor='middle' font-size='15' "
                   f"font-weight='bold'>{escape(title)}</text>")
    for label, y1, y2 in d.bands:
        out.append(f"<rect x='{band_x}' y='{y1:.0f}' width='34' height='{y2 - y1:.0f}' rx='6' "
                   "fill='#a9c7e8'/>")
        middle = (y1 + y2) / 2
        out.append(f"<text x='{band_x + 21}' y='{middle:.0f}' text-anchor='middle' "
                   f"font-weight='bold' transform='rotate(-90 {band_x + 21} {middle:.0f})'>"
                   f"{escape(label)}</text>")
    for box in d.boxes:
        out.append(f"<rect x='{box.x:.0f}' y='{box.y:.0f}' width='{box.width:.0f}' "
                   f"height='{box.height:.0f}' fill='{box.fill}' stroke='#333'/>")
        for i, line in enumerate(box.lines):
            weight = " font-weight='bold'" if i == 0 and box.bold_first else ""
            out.append(f"<text x='{box.x + PADDING:.0f}' "
                       f"y='{box.y + PADDING + (i + 0.8) * LINE_HEIGHT:.0f}'{weight} "
                       f"xml:space='preserve'>{escape(line)}</text>")
    for x1, y1, x2, y2 in d.lines:
        out.append(f"<line x1='{x1:.0f}' y1='{y1:.0f}' x2='{x2:.0f}' y2='{y2:.0f}' "
                   "stroke='#333' stroke-width='1.3'/>")
    for x1, y1, x2, y2 in d.arrows:
        out.append(f"<line x1='{x1:.0f}' y1='{y1:.0f}' x2='{x2:.0f}' y2='{y2:.0f}' "
                   "stroke='#333' stroke-width='1.3' marker-end='url(#arrow)'/>")
    out.append("</svg>")
    return "\n".join(out)


def read_flow(warehouse: Path) -> list[dict]:
    """The rows of ``marts.prisma_flow`` of a warehouse file, read-only."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        frame = con.execute("select * from marts.prisma_flow order by stage_order, stage, path, "
                            "source, reason").fetchdf()
    finally:
        con.close()
    return frame.to_dict("records")
