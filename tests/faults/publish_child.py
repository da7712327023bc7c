"""Child process for the publish fault tests: publish a build database, dying by SIGKILL at the
N-th filesystem switch call (os.replace / os.rename / os.symlink), before or after it runs.

usage: publish_child.py <data dir> <build database> <N> <before|after>
Exit 3 means the publish finished without reaching call N.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main(data_dir: str, build: str, kill_at: int, when: str) -> None:
    os.environ["BETACELL_DATA_DIR"] = data_dir
    from flows.publish import publish
    from flows.settings import get_settings

    calls = {"n": 0}

    def trap(original):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == kill_at and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = original(*args, **kwargs)
            if calls["n"] == kill_at and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapped

    for name in ("replace", "rename", "symlink"):
        setattr(os, name, trap(getattr(os, name)))
    publish(get_settings(), Path(build))
    sys.exit(3)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
