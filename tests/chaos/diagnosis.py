"""What a stack that did not settle looks like: asked only when a scenario timed out.

Each part says what it sees now (a process that does not answer says so, it never
raises): the spool folder and each proxy's publishing metrics, each shipper's metrics,
the last lines each service logged, and the Redis topology as the nodes and the
sentinels see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx
import redis

from shared.spool_format import segment_paths
from tests.chaos.stack import Service, Stack
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import MASTER_NAME, ReplicatedRedis

LOG_LINES = 12
_PROXY_METRICS = ("proxy_spool", "proxy_records_", "proxy_publish")
_SHIPPER_METRICS = ("shipper_",)


def describe_stack(stack: Stack) -> str:
    """The spool folder, then every proxy and shipper: alive, metrics, last log lines."""
    parts = [_describe_spool(stack.spool_dir)]
    for proxy in stack.proxies:
        parts.append(_describe_service(proxy, proxy.url if proxy.port else None, _PROXY_METRICS))
    for shipper in stack.shippers:
        port = shipper.env.get("SHIPPER_METRICS_PORT")
        url = f"http://127.0.0.1:{port}" if port else None
        parts.append(_describe_service(shipper, url, _SHIPPER_METRICS))
    return "\n".join(parts)


def describe_sentinel(servers: ReplicatedRedis) -> str:
    """Each sentinel's primary for ``MASTER_NAME`` and the failovers it logged, each
    node's ROLE."""
    lines = ["sentinels:"]
    for sentinel in servers.sentinels:
        try:
            with sentinel.client() as client:
                address = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME
                )
                master = client.sentinel_master(MASTER_NAME)
            port = int(address[1]) if address else None
            lines.append(
                f"  :{sentinel.port} names :{port} (flags {master.get('flags')}, "
                f"epoch {master.get('config-epoch')}, {master.get('num-slaves')} replicas)"
            )
        except (redis.RedisError, TypeError, IndexError) as exc:
            lines.append(f"  :{sentinel.port} does not answer: {exc!r}")
        lines.extend(f"    {line}" for line in _failovers(sentinel.workdir / "sentinel.log"))
    lines.append("nodes:")
    lines.extend(f"  {_describe_node(node.port, node.process is not None)}"
                 for node in servers.nodes)
    return "\n".join(lines)


def describe_cluster(cluster: RedisCluster) -> str:
    """Each cluster node's ROLE."""
    return "\n".join(["nodes:", *(f"  {_describe_node(port, True)}" for port in cluster.ports)])


def _describe_node(port: int, started: bool) -> str:
    if not started:
        return f":{port} not running (killed)"
    try:
        with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as client:
            role = client.execute_command("ROLE")
            info = client.info("replication")
    except redis.RedisError as exc:
        return f":{port} does not answer: {exc!r}"
    kind = role[0].decode()
    if kind == "master":
        replicas = [f"{v.get('port')} {v.get('state')} offset {v.get('offset')}"
                    for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        return (f":{port} master, offset {role[1]}, replicas: "
                f"{', '.join(replicas) or 'none'}")
    if kind == "slave":
        return (f":{port} replica of :{role[2]} ({role[3].decode()}), "
                f"link {info.get('master_link_status')}")
    return f":{port} {kind}"


def _failovers(log: Path) -> list[str]:
    """The sentinel's ``+switch-master`` lines: every failover it saw, in order."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return [repr(exc)]
    return [line for line in lines if "+switch-master" in line]


def _describe_spool(folder: Path) -> str:
    try:
        paths = segment_paths(folder)
    except OSError as exc:
        return f"spool folder {folder}: {exc!r}"
    lines = [f"spool folder: {len(paths)} segment(s)"]
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            lines.append(f"  {path.name}: {exc!r}")
            continue
        lines.append(f"  {path.name}: {len(data)} bytes, {len(data.splitlines())} lines")
    return "\n".join(lines)


def _describe_service(service: Service, url: str | None, prefixes: Iterable[str]) -> str:
    process = service.process
    if process is None:
        state = "never started"
    elif process.poll() is None:
        state = f"running (pid {process.pid}, {service.starts} start(s))"
    else:
        state = f"exited with {process.returncode}"
    lines = [f"{service.name}: {state}"]
    if url is not None:
        lines.append(f"  metrics: {_metrics(url, tuple(prefixes))}")
    lines.append(f"  last log lines ({service.log_path}):")
    lines.extend(f"    {line}" for line in _last_lines(service.log_path))
    return "\n".join(lines)


def _metrics(url: str, prefixes: tuple[str, ...]) -> str:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        return f"no answer: {exc!r}"
    wanted = [line for line in text.splitlines()
              if line.startswith(prefixes) and not line.startswith("#")
              and "_bucket" not in line and "_created" not in line]
    return "; ".join(wanted) or "none"


def _last_lines(path: Path) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return [repr(exc)]
    return [line[:400] for line in lines[-LOG_LINES:]]
