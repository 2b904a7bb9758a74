"""Private nginx instances for the proxy benchmark: the fast upstream and the floor.

Each instance runs in the foreground with its own prefix folder (config, logs, temp
paths), one worker, on a loopback port, and is stopped with the bench.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.ports import free_port, wait_for_port

CHAT_COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
}

DOWNLOAD_PATH = "/v1/files/bench-download/content"

_COMMON = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
{body}
}}
"""

_UPSTREAM = """
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 0;
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 '{completion}';
        }}
        location = {download_path} {{
            default_type application/octet-stream;
            alias {download_file};
        }}
    }}
"""

_REVERSE = """
    upstream json_upstream {{ server 127.0.0.1:{json_port}; keepalive 256; }}
    upstream stream_upstream {{ server 127.0.0.1:{stream_port}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 0;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_request_buffering off;
        location /v1/ {{ proxy_pass http://json_upstream; }}
        location /stream/v1/ {{ proxy_pass http://stream_upstream/v1/; }}
    }}
"""


def nginx_binary() -> str:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("no nginx binary: run `make bench`, which installs it")
    return binary


def nginx_version() -> str:
    done = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().split("/")[-1]


class Nginx:
    """One nginx master plus one worker, configured by ``body`` (the ``http`` block's servers)."""

    def __init__(self, prefix: Path, body: str, port: int) -> None:
        self.prefix = prefix
        self.port = port
        self._body = body
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def upstream(cls, prefix: Path, download_file: Path) -> Nginx:
        """Serves the canned chat completion and a big download."""
        port = free_port()
        body = _UPSTREAM.format(
            port=port,
            completion=json.dumps(CHAT_COMPLETION),
            download_path=DOWNLOAD_PATH,
            download_file=download_file,
        )
        return cls(prefix, body, port)

    @classmethod
    def reverse_proxy(cls, prefix: Path, json_port: int, stream_port: int) -> Nginx:
        """A plain reverse proxy with keep-alive upstream connections: the floor."""
        port = free_port()
        return cls(prefix, _REVERSE.format(port=port, json_port=json_port,
                                           stream_port=stream_port), port)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        config.write_text(_COMMON.format(prefix=self.prefix, body=self._body))
        self._process = subprocess.Popen(
            [nginx_binary(), "-p", str(self.prefix), "-c", str(config), "-g",
             "daemon off; user root;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
