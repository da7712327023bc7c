"""The benchmark (`make bench`, `betacell bench`) runs end to end on a small size and cleans up
after itself, so it cannot break silently between the occasions someone runs it at full size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.settings import REPO_DIR

STUDIES, PUBMED_RECORDS = 500, 200


@pytest.mark.pipeline
@pytest.mark.integration
def test_a_small_bench_runs_every_stage_and_leaves_no_scratch_folder(tmp_path: Path):
    """About 40-60 s on two shared cores: the real command generates 500 studies, lands, loads
    and builds them with dbt (a fresh project parse), runs the pandas baseline, then parses 200
    PubMed records with both parsers. Its scratch folders go to a private TMPDIR, which must be
    empty afterwards.
    Why over 30 s: the real command, every stage (a dbt build of its own generated studies)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "COLUMNS": "200"}
    betacell = Path(sys.executable).with_name("betacell")
    completed = subprocess.run(
        [str(betacell), "bench", "--studies", str(STUDIES), "--pubmed-records",
         str(PUBMED_RECORDS)],
        cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=600)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]

    assert f"stg_ctgov__studies holds {STUDIES} of the {STUDIES} studies" in output
    for stage in ("archive -> raw files", "raw files -> DuckDB raw", "dbt build (staging)",
                  "archive -> staging (total)"):
        assert re.search(rf"{re.escape(stage)}\s*│\s*\d+\.\d", output), (stage, output[-3000:])
    assert re.search(r"pandas baseline: \d+\.\d s", output), output[-3000:]
    assert f"PubMed parse benchmark: {PUBMED_RECORDS} records" in output
    assert re.search(r"Speed ratio \(pubmed-parser time / betacell time\): \d", output), output

    assert list(scratch.iterdir()) == [], "the benchmark left scratch data behind"
    assert "Traceback" not in output
