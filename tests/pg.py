"""A throw-away PostgreSQL cluster for the test session (Debian's package, as root via runuser)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgCluster:
    base: Path
    port: int
    bindir: Path
    as_postgres: bool

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def find_bindir() -> Path | None:
    hits = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(hits[-1]).parent if hits else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster() -> PgCluster:
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    as_postgres = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="pilotbot-pg-"))
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    cluster = PgCluster(base, port, bindir, as_postgres)
    cluster._run(str(bindir / "initdb"), "-D", str(base / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    cluster._run(
        str(bindir / "pg_ctl"),
        "-D",
        str(base / "data"),
        "-w",
        "-l",
        str(base / "log"),
        "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off -c max_connections=200",
        "start",
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return cluster
        time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not start")
