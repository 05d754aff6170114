"""Property-based run of schemathesis against the published schema on a live server: no 5xx.

The server runs in a background thread on a free port; schemathesis runs as its CLI (its
installed entry point) with the token as a header, positive and negative data, fixed seed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.server import build_web_app
from bot.clock import FixedClock
from bot.config import Settings
from bot.core import build_core
from bot.tokens import TokenService
from storage.db import make_engine
from tests.api.conftest import seed

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")


class LiveServer:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        assert self._ready.wait(30), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


CASES_SENT: list[tuple[str, int]] = []  # (media type, status) of every case file that reached the server


@web.middleware
async def record_case_files(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    if request.method == "POST" and request.path.endswith("/evals/cases"):
        CASES_SENT.append((request.content_type, response.status))
    return response


@pytest.fixture
def live(sqlite_settings: Settings) -> Iterator[tuple[str, str]]:
    engine = make_engine(sqlite_settings.database_url)
    clock = FixedClock()
    core = build_core(sqlite_settings, clock, engine, migrate=False)
    seed(core)
    token, _ = TokenService(engine, clock).create("schemathesis")
    app = build_web_app(core)
    app.middlewares.insert(0, record_case_files)
    CASES_SENT.clear()
    with LiveServer(app) as server:
        yield f"http://127.0.0.1:{server.port}", token
    engine.dispose()


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (pip install -e '.[dev]')")
def test_schemathesis_finds_no_server_errors(live: tuple[str, str], tmp_path: Path) -> None:
    base, token = live
    assert SCHEMATHESIS is not None
    cmd = [
        SCHEMATHESIS,
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        f"{base}/api/v1",
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "40",
        "--seed",
        "7",
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(root)}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counts is not None and counts.group(1) == counts.group(2) and int(counts.group(1)) > 100, out[-3000:]
    assert "Operations:       11 selected / 11 total" in out and "Tested: 11" in out, out[-3000:]
    # The hooks send case files as text: valid JSONL and CSV bodies reach the server and are scored.
    accepted = {media for media, status in CASES_SENT if status == 201}
    assert {"application/x-ndjson", "text/csv"} <= accepted, sorted(set(CASES_SENT))[:20]
