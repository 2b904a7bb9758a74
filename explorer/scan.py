"""One pass of DuckDB over JSONL files into summary rows: one row per record, no bodies.

The columns are explicit, so DuckDB parses only what a summary needs and a record of an
unexpected shape still counts (a part it cannot read becomes null). A line that is not
JSON (a torn last line while the shipper appends) yields no row.

Usage is read from the shapes OpenAI returns: chat and legacy completions
(``usage.prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``),
the Responses API (``usage.input_tokens``, ``output_tokens``,
``input_tokens_details.cached_tokens``) and embeddings (``usage.prompt_tokens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

SUMMARY_VERSION = 1
"""Bump when the summary columns or their meaning change: old cache entries are ignored."""

FILE_KEY = "__file"
"""Key put first into every line while staging, naming the file the line came from."""

_USAGE = (
    "STRUCT(prompt_tokens BIGINT, completion_tokens BIGINT, input_tokens BIGINT, "
    "output_tokens BIGINT, prompt_tokens_details STRUCT(cached_tokens BIGINT), "
    "input_tokens_details STRUCT(cached_tokens BIGINT))"
)
# Nested STRUCTs, not JSON: DuckDB then extracts these few values while parsing and skips
# the rest of the bodies. A value of another shape (a text body) becomes null, the row stays.
_COLUMNS = {
    FILE_KEY: "VARCHAR",
    "id": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "user_id": "VARCHAR",
    "model": "VARCHAR",
    "duration_ms": "DOUBLE",
    "ttfb_ms": "DOUBLE",
    "request": "STRUCT(method VARCHAR, path VARCHAR)",
    "response": (
        "STRUCT(status_code INTEGER, streaming BOOLEAN, "
        f"body STRUCT(usage {_USAGE}, error STRUCT(type VARCHAR)))"
    ),
    "error": "STRUCT(type VARCHAR)",
}

SUMMARY_SCHEMA = """
    file VARCHAR, id VARCHAR, ts TIMESTAMPTZ, day DATE, user_id VARCHAR, model VARCHAR,
    method VARCHAR, path VARCHAR, status INTEGER, streaming BOOLEAN, is_error BOOLEAN,
    error_type VARCHAR, duration_ms DOUBLE, ttfb_ms DOUBLE,
    input_tokens BIGINT, output_tokens BIGINT, cached_tokens BIGINT
"""

_SELECT = """
WITH raw AS (
    SELECT
        "__file" AS file, id, "timestamp" AS ts, user_id, model, duration_ms, ttfb_ms,
        request.method AS method, request.path AS path,
        response.status_code AS status, response.streaming AS streaming,
        response.body.usage AS usage, response.body.error.type AS upstream_error_type,
        error.type AS proxy_error_type
    FROM read_json(
        $paths, columns = {columns}, format = 'newline_delimited',
        ignore_errors = true, maximum_object_size = {max_line_bytes}
    )
)
SELECT
    file, id, ts, CAST(ts AS DATE) AS day, user_id, model, method, path, status,
    coalesce(streaming, false) AS streaming,
    (proxy_error_type IS NOT NULL OR status IS NULL OR status >= 400) AS is_error,
    CASE
        WHEN proxy_error_type IS NOT NULL THEN proxy_error_type
        WHEN status >= 400 THEN coalesce(upstream_error_type, 'http_' || status)
        WHEN status IS NULL THEN 'no_response'
    END AS error_type,
    duration_ms, ttfb_ms,
    coalesce(usage.prompt_tokens, usage.input_tokens, 0) AS input_tokens,
    coalesce(usage.completion_tokens, usage.output_tokens, 0) AS output_tokens,
    coalesce(usage.prompt_tokens_details.cached_tokens,
             usage.input_tokens_details.cached_tokens, 0) AS cached_tokens
FROM raw
WHERE id IS NOT NULL AND ts IS NOT NULL
"""

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Far above a record's size cap (docs/contract.md, "Size"); DuckDB's read buffer is sized by it."""

SCAN_SQL = _SELECT.format(columns=repr(_COLUMNS).replace('"', "'"), max_line_bytes=MAX_LINE_BYTES)


def connect(
    temp_directory: Path, memory_limit_mb: int = 256, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that computes days in UTC and stays within ``memory_limit_mb``.

    Beyond the limit DuckDB spills to ``temp_directory`` (inside the cache, never the store).
    """
    con = duckdb.connect(
        config={"memory_limit": f"{memory_limit_mb}MB", "temp_directory": str(temp_directory)}
    )
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def tag_lines(name: str, data: bytes) -> bytes:
    """``data`` (JSONL) with the file ``name`` as the first key of every line.

    DuckDB pays a few milliseconds per file it opens; staging a batch of files as one
    tagged file removes that cost and keeps each row's origin. ``name`` is a log file
    name, so it needs no JSON escaping.
    """
    tag = b'{"' + FILE_KEY.encode() + b'":"' + name.encode() + b'",'
    if not data:
        return b""
    tagged = data.replace(b"\n{", b"\n" + tag)
    tagged = tag + tagged[1:] if tagged.startswith(b"{") else tagged
    return tagged if tagged.endswith(b"\n") else tagged + b"\n"


def scan_into(con: duckdb.DuckDBPyConnection, table: str, paths: Sequence[str]) -> None:
    """Append the summary rows of the tagged JSONL files ``paths`` to ``table``."""
    con.execute(f"INSERT INTO {table} {SCAN_SQL}", {"paths": list(paths)})
