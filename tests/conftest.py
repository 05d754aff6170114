from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from bot.config import Settings
from bot.core import Core, build_core
from storage.db import make_engine, upgrade
from tests import pg

IN_CI = os.environ.get("CI", "").lower() == "true"
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.PgCluster | None]:
    try:
        cluster = pg.start_cluster()
    except (FileNotFoundError, OSError) as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required on CI: {e}")
        yield None
        return
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(pg_cluster: pg.PgCluster | None) -> str | None:
    if pg_cluster is None:
        return None
    admin = sa.create_engine(pg_cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("CREATE DATABASE pilotbot_template"))
    admin.dispose()
    engine = make_engine(pg_cluster.url_for("pilotbot_template"))
    upgrade(engine)
    engine.dispose()
    return "pilotbot_template"


def _pg_database(cluster: pg.PgCluster, template: str) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return cluster.url_for(name)


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database per test: SQLite always, PostgreSQL when a server exists."""
    if request.param == "sqlite":
        path = tmp_path / "pilotbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    cluster = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("no PostgreSQL server here (apt-get install postgresql, or run on CI)")
    return _pg_database(cluster, request.getfixturevalue("pg_template"))


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "pilotbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(_env_file=None, database_url=db_url, pilotbot_admins="console:root")  # type: ignore[call-arg]


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    e = make_engine(settings.database_url)
    yield e
    e.dispose()


@pytest.fixture
def core(settings: Settings, clock: FixedClock, engine: Engine) -> Core:
    return build_core(settings, clock, engine, migrate=False)


@pytest.fixture(autouse=True)
def _fresh_teams_pacers() -> Iterator[None]:
    """The Teams pacer is per bot and process (adapters/teams/pacing.py): no test inherits another's
    conversations or 429 hold."""
    from adapters.teams import pacing

    pacing._PACERS.clear()
    yield
    pacing._PACERS.clear()
