"""A lake publisher in its own process, for the concurrency and kill tests.

    python lake_writer.py WAREHOUSE RUN_ID MODE [BARRIER_DIR]

MODE: ``none`` publishes; ``barrier`` waits inside the transaction, just before COMMIT, until
two writers reached that point; ``hang`` prints ``ready`` there and sleeps (to be killed);
``commit`` prints ``committing`` there and commits at once (to be killed during COMMIT).
Settings come from the environment (BETACELL_LAKE_*, BETACELL_S3_*). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from flows.lake import LakeError, publish_to_lake
from flows.settings import get_settings


def main() -> int:
    warehouse, run_id, mode = sys.argv[1:4]
    barrier = Path(sys.argv[4]) if len(sys.argv) > 4 else None

    def before_commit(_con) -> None:
        if mode == "barrier":
            (barrier / run_id).touch()
            deadline = time.monotonic() + 60
            while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        elif mode == "hang":
            print("ready", flush=True)
            time.sleep(300)
        elif mode == "commit":
            print("committing", flush=True)

    try:
        result = publish_to_lake(get_settings(), Path(warehouse), run_id,
                                 before_commit=None if mode == "none" else before_commit)
    except LakeError as exc:
        print(json.dumps({"ok": False, "run_id": run_id, "error": str(exc)}), flush=True)
        return 3
    print(json.dumps({"ok": True, "run_id": run_id, **result.as_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
