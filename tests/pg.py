"""A throwaway PostgreSQL cluster on loopback for the test run (initdb refuses root: runuser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The cluster could not start; the message carries the reason and the server log."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    base: Path
    port: int
    as_postgres: bool

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://ali@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://ali@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else list(args)

    def create_database(self, name: str) -> str:
        import psycopg  # noqa: PLC0415 -- only the PostgreSQL tests need the driver

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=ali dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster() -> Cluster:
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            raise PostgresUnavailable(f"{tool} not found on PATH (install PostgreSQL 15)")
    base = Path(tempfile.mkdtemp(prefix="ali-pg-"))
    as_postgres = os.geteuid() == 0
    if as_postgres:
        shutil.chown(base, user="postgres")
    cluster = Cluster(base=base, port=_free_port(), as_postgres=as_postgres)
    steps = [
        cluster._cmd("initdb", "-D", str(base / "data"), "-A", "trust", "-U", "ali", "-E", "UTF8"),
        cluster._cmd(
            "pg_ctl",
            "-D",
            str(base / "data"),
            "-o",
            # Durability off: a test cluster is thrown away, speed matters more.
            f"-p {cluster.port} -k {base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200",
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ),
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            cluster.stop()
            raise PostgresUnavailable(
                f"{' '.join(step)} failed ({result.returncode}): {result.stderr}{log}"
            )
    return cluster
