"""With several workers, each process's metrics go to files of its own, however its id is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import os, sys
from proxy.metrics import Metrics, read_process_id_once
read_process_id_once()
metrics = Metrics()
metrics.records_published.inc()
child = os.fork()
if child == 0:
    metrics.records_published.inc(5)  # a forked child counts in a file of its own
    os._exit(0)
os.waitpid(child, 0)
print(os.getpid(), child)
"""


def test_a_forked_child_writes_its_own_file_and_the_parent_keeps_its_count(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )
    parent, child = done.stdout.split()
    assert sorted(path.name for path in tmp_path.glob("counter_*.db")) == sorted(
        [f"counter_{parent}.db", f"counter_{child}.db"]
    )

    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    assert registry.get_sample_value("proxy_records_published_total") == 6
