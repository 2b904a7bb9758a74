"""The PNG chart of the proxy benchmark: latency percentiles per target, and req/s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import with_calls


def latency_chart(payload: dict[str, Any], path: Path) -> None:
    """Left: p50/p90/p99/p99.9 at one connection (log scale). Right: req/s by connections."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = with_calls(payload)
    names = [t["name"] for t in targets]
    keys = [("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("p999_ms", "p99.9")]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / len(keys)
    for index, (key, label) in enumerate(keys):
        values = [max(t["one_connection"][key], 0.001) for t in targets]
        positions = [i + (index - (len(keys) - 1) / 2) * width for i in range(len(targets))]
        left.bar(positions, values, width, label=label)
    left.set_yscale("log")
    left.set_xticks(range(len(targets)), names, rotation=20, ha="right")
    left.set_ylabel("latency, ms (log)")
    left.set_title("Latency percentiles, 1 connection")
    left.legend()
    left.grid(axis="y", which="both", alpha=0.3)
    for t in targets:
        runs = t["saturation"]
        right.plot([r["connections"] for r in runs], [r["rps"] for r in runs], marker="o",
                   label=t["name"])
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("connections")
    right.set_ylabel("requests/s (log)")
    right.set_title("Throughput by connections")
    right.legend(fontsize=8)
    right.grid(which="both", alpha=0.3)
    figure.suptitle(f"Proxy benchmark — {payload['machine']['cores']} cores, "
                    f"{payload['started']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
