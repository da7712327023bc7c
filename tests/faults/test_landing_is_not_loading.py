"""Landing is not loading: what a failed run landed is loaded by the next good run.

The probe: an ICTRP export lands in a run that then fails (here, a broken export beside it
makes the ICTRP ingest fail, so ICTRP is stale). Once the broken file is removed, the next run
must load the good export — it was landed, but never loaded and published."""

from __future__ import annotations

import pytest

from flows.refresh import refresh_warehouse
from flows.registries import ingest_ictrp
from tests.helpers import query

pytestmark = pytest.mark.integration

GOOD_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<Trials_downloaded_from_ICTRP>
<Trial><TrialID>ISRCTN00000017</TrialID><Public_title>Probe export for the landing test</Public_title>
<Source_Register>ISRCTN</Source_Register><Countries>Norway</Countries></Trial>
</Trials_downloaded_from_ICTRP>
"""


def test_an_export_landed_by_a_failed_run_is_loaded_by_the_next_run(published_copy):
    settings = published_copy
    inbox = settings.snapshot_path / "ictrp"
    (inbox / "a_probe.xml").write_bytes(GOOD_EXPORT)
    (inbox / "z_broken.csv").write_bytes(b"not,an,ictrp,export\n1,2,3,4\n")

    first = refresh_warehouse(source="snapshot", stages=["registries"])
    assert "ictrp" in first["stale_sources"]
    assert "z_broken.csv: no TrialID column" in first["sources"]["ictrp"]["message"]
    assert query(settings.warehouse_path, "select count(*) from raw.ictrp_trials "
                 "where record_id = 'ISRCTN00000017'") == [(0,)]

    (inbox / "z_broken.csv").unlink()
    second = refresh_warehouse(source="snapshot", stages=["registries"])
    assert "ictrp" not in second["stale_sources"]
    assert query(settings.warehouse_path, "select count(*) from raw.ictrp_trials "
                 "where record_id = 'ISRCTN00000017'") == [(1,)]

    again = ingest_ictrp(settings, "snapshot")  # loaded and published now: not landed again
    assert again.run is None and again.skipped_reason.startswith("no new export")
