"""Landing is not loading: what a failed run landed is loaded by the next good run.

The probe: an ICTRP export lands in a run that then fails (here dbt fails, so nothing is
published). The next run must load the export — it was landed, but never loaded and published.
A broken export beside it is rejected alone, with the reason, and never blocks the good one."""

from __future__ import annotations

import pytest

from flows.errors import BuildFailed
from flows.refresh import refresh_warehouse
from flows.state import read_source_states
from tests.helpers import extract, query

pytestmark = pytest.mark.integration

GOOD_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<Trials_downloaded_from_ICTRP>
<Trial><TrialID>ISRCTN00000017</TrialID><Public_title>Probe export for the landing test</Public_title>
<Source_Register>ISRCTN</Source_Register><Countries>Norway</Countries></Trial>
</Trials_downloaded_from_ICTRP>
"""


def test_an_export_landed_by_a_failed_run_is_loaded_by_the_next_run(published_copy, tmp_path,
                                                                   monkeypatch):
    """Why over 30 s: the run after the failed one rebuilds (the export is new to the build)."""
    settings = published_copy
    inbox = settings.snapshot_path / "ictrp"
    (inbox / "a_probe.xml").write_bytes(GOOD_EXPORT)
    (inbox / "z_broken.csv").write_bytes(b"not,an,ictrp,export\n1,2,3,4\n")
    failing_dbt = tmp_path / "dbt"
    failing_dbt.write_text("#!/bin/sh\necho 'dbt crashed' >&2\nexit 2\n")
    failing_dbt.chmod(0o755)
    with monkeypatch.context() as patch:
        patch.setattr("flows.transform.dbt_executable", lambda: str(failing_dbt))
        with pytest.raises(BuildFailed):
            refresh_warehouse(source="snapshot", stages=["registries"])
    assert query(settings.warehouse_path, "select count(*) from raw.ictrp_trials "
                 "where record_id = 'ISRCTN00000017'") == [(0,)]

    second = refresh_warehouse(source="snapshot", stages=["registries"])
    assert "ictrp" not in second["stale_sources"]
    assert query(settings.warehouse_path, "select count(*) from raw.ictrp_trials "
                 "where record_id = 'ISRCTN00000017'") == [(1,)]
    (reason,) = query(settings.warehouse_path, "select reason from raw.rejected_records "
                      "where source = 'ictrp' and reason like 'z_broken.csv%'")[0]
    assert reason.startswith("z_broken.csv: the whole file was refused: z_broken.csv: no TrialID")

    again = extract("ictrp", settings, "snapshot",  # loaded and published now: not landed again
                    state=read_source_states(settings)["ictrp"])
    assert again.run is None and again.skipped_reason.startswith("no new export")
