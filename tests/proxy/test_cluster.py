"""The proxy on a real Redis Cluster of three masters: keys and records on one slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError
from redis.cluster import RedisCluster as SyncCluster

from proxy.publish.outcomes import Outcome, xadd_batch
from proxy.settings import ProxySettings
from shared.redis_client import connect
from shared.settings import CommonSettings
from shared.streams import KEYS_ENTRIES, RECORD_FIELD
from tests.proxy.conftest import StartProxy
from tests.support.redis_cluster import RedisCluster
from tests.support.waiting import async_wait_until, wait_until

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

STREAM = "{proxy}:exchanges"


def test_a_cluster_needs_a_hash_tagged_stream() -> None:
    with pytest.raises(ValidationError, match="hash-tagged"):
        ProxySettings(_env_file=None, redis_cluster=True,  # type: ignore[call-arg]
                      redis_stream="proxy:exchanges")


@pytest.mark.slow
def test_keys_and_records_work_on_a_three_master_cluster(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    with RedisCluster(tmp_path / "cluster") as cluster:
        cluster_env = {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "true", "REDIS_STREAM": STREAM}
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
        created = subprocess.run(
            [sys.executable, "-m", "proxy", "keys", "create", "--user", "alice"],
            env=cli_env | cluster_env, cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()

        proxy = start_proxy(AUTH_MODE="keys", **cluster_env)
        assert httpx.get(f"{proxy.url}/ready", timeout=5).status_code == 200
        client = openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=0)

        def call() -> Any:
            try:
                return client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            except openai.AuthenticationError:
                return None

        # The replica loads the keys from the cluster in the background.
        raw = wait_until(call, 10, "the key to be accepted", interval_s=0.2)
        record_id = raw.headers["x-proxy-record-id"]

        redis = SyncCluster.from_url(cluster.url)
        try:
            entries = wait_until(lambda: redis.xrange(STREAM), 10, "a record in the stream")
            records = [json.loads(fields[RECORD_FIELD.encode()]) for _, fields in entries]
            assert [(r["id"], r["user_id"]) for r in records] == [(record_id, "alice")]
            # The stream and the keys really sit on different masters' slots.
            assert redis.keyslot(STREAM) != redis.keyslot(KEYS_ENTRIES)
        finally:
            redis.close()


async def test_wait_asks_the_replicas_of_the_primary_that_owns_the_stream(
    tmp_path: Path,
) -> None:
    with RedisCluster(tmp_path / "cluster", replicas=1) as cluster:
        settings = CommonSettings(
            _env_file=None, redis_url=cluster.url, redis_cluster=True, redis_stream=STREAM,
            redis_min_replicas=1, redis_wait_timeout_ms=200,
        )
        client = connect(settings, timeout_s=2)
        wait = settings.replica_wait

        async def published() -> bool:
            landing = await xadd_batch(client, STREAM, [b"a"], timeout_s=2, replica_wait=wait)
            return landing.outcomes == [Outcome.PUBLISHED]

        # The replicas finish their first sync after the cluster forms.
        await async_wait_until(published, 20, "a publish the stream's replica confirms")

        # The stream's own replica stops confirming; the other primaries' replicas still
        # would. A WAIT sent anywhere but to the stream's primary would count them.
        primary = client.get_node_from_key(STREAM)
        replica = cluster.process_of(cluster.replica_of(primary.port))
        replica.send_signal(signal.SIGSTOP)
        try:
            landing = await xadd_batch(client, STREAM, [b"b"], timeout_s=2, replica_wait=wait)
        finally:
            replica.send_signal(signal.SIGCONT)
        await client.aclose()

        assert landing.outcomes == [Outcome.AMBIGUOUS]
