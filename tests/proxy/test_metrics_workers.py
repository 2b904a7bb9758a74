"""``/metrics`` with ``PROXY_WORKERS=2``: every request counted once, whichever worker answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy.conftest import RunningProxy, StartProxy, read_records

REQUESTS = 40


def _requests_total(proxy: RunningProxy) -> float:
    """The POSTs counted, as whichever worker takes this scrape reports them."""
    text = httpx.get(f"{proxy.url}/metrics", headers={"connection": "close"}).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "proxy_requests_total"
        and sample.labels == {"method": "POST", "status": "200", "status_class": "2xx",
                              "model": "gpt-4o-mini"}
    )


def _call(proxy: RunningProxy) -> int:
    # A new connection each time, so the kernel hands calls to both workers.
    with httpx.Client(headers={"connection": "close"}) as client:
        response = client.post(f"{proxy.base_url}/chat/completions",
                               json={"model": "gpt-4o-mini", "messages": []})
    return response.status_code


def _requests_per_worker(folder: Path) -> list[float]:
    """This counter's value in each worker's own file."""
    per_worker = []
    for path in sorted(folder.glob("counter_*.db")):
        per_worker.append(sum(
            value for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))
            if '"proxy_requests_total"' in key and "gpt-4o-mini" in key
        ))
    return per_worker


def _send(proxy: RunningProxy, calls: int) -> None:
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: _call(proxy), range(calls)))
    assert statuses == [200] * calls


def _check_counted(proxy: RunningProxy, redis_url: str, calls: int, records: int) -> None:
    read_records(redis_url, records)
    # Asked several times: each answer comes from either worker and must be the same.
    assert {_requests_total(proxy) for _ in range(6)} == {calls}


@pytest.mark.slow
def test_two_workers_count_every_request_exactly_once(
    start_proxy: StartProxy, redis_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    proxy = start_proxy(PROXY_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(folder))
    sent = 0
    # The kernel picks the worker that accepts: on a busy machine one may take a whole
    # round, so send rounds until both have answered (the sums must hold either way).
    for _ in range(10):
        _send(proxy, REQUESTS)
        sent += REQUESTS
        if len([count for count in _requests_per_worker(folder) if count > 0]) == 2:
            break
    _check_counted(proxy, redis_url, sent, sent)

    assert proxy.log().count("proxy_started") == 2
    per_worker = _requests_per_worker(folder)
    assert sum(per_worker) == sent
    assert len([count for count in per_worker if count > 0]) == 2, per_worker

    # A restart on the same folder starts from zero: the old values are cleared.
    proxy.stop()
    restarted = start_proxy(PROXY_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(folder))
    _send(restarted, 5)
    _check_counted(restarted, redis_url, 5, sent + 5)
