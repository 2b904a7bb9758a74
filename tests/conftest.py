"""Fixtures shared by every test: private Redis, Azurite and fake OpenAI upstream servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.azurite import Azurite
from tests.support.fake_upstream import FakeUpstream
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port; ``.stop()``/``.start()`` it to simulate outages."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite per test session (each test uses its own container)."""
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def azurite_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A fresh fake OpenAI upstream per test (start-up takes a few milliseconds)."""
    with FakeUpstream() as server:
        yield server
