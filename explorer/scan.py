"""One pass of DuckDB over JSONL files into summary rows: one row per record, no bodies.

The columns are explicit, so DuckDB parses only what a summary needs and a record of an
unexpected shape still counts (a part it cannot read becomes null). A line that is not
JSON (a torn last line while the shipper appends) yields no row.

Usage is read from the shapes OpenAI returns: chat and legacy completions
(``usage.prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``),
the Responses API (``usage.input_tokens``, ``output_tokens``,
``input_tokens_details.cached_tokens``), embeddings (``usage.prompt_tokens``), Realtime
(``input_token_details``/``output_token_details``), transcription (tokens, or
``usage.seconds``/``duration``), speech (the request's ``input`` characters) and images
(count, size, quality). A usage count that is not a non-negative int64 sets
``usage_problem`` and zeroes the record's counts: it is reported as unpriced, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

SUMMARY_VERSION = 2
"""Bump when the summary columns or their meaning change: old cache entries are ignored."""

FILE_KEY = "__file"
"""Key put first into every line while staging, naming the file the line came from."""

# Usage stays JSON: a count of the wrong type (a string, a list, a float, beyond int64)
# must mark the record as malformed, not drop it (a typed column would fail the line).
# Bodies are STRUCTs, so DuckDB extracts these few values while parsing and skips the rest;
# a body of another shape (a text body) becomes null and the row stays.
_COLUMNS = {
    FILE_KEY: "VARCHAR",
    "id": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "user_id": "VARCHAR",
    "model": "VARCHAR",
    "duration_ms": "DOUBLE",
    "ttfb_ms": "DOUBLE",
    "request": (
        "STRUCT(method VARCHAR, path VARCHAR, "
        "body STRUCT(input JSON, size VARCHAR, quality VARCHAR))"
    ),
    "response": (
        "STRUCT(status_code INTEGER, streaming BOOLEAN, body STRUCT(model VARCHAR, usage JSON, "
        "error STRUCT(type VARCHAR), service_tier VARCHAR, duration JSON, data JSON))"
    ),
    "error": "STRUCT(type VARCHAR)",
}

# Each count: the JSON paths that carry it in OpenAI's usage shapes (chat and completions,
# Responses, Realtime, transcription, images), first present wins.
USAGE_COUNTS = {
    "input_tokens": ("$.prompt_tokens", "$.input_tokens"),
    "output_tokens": ("$.completion_tokens", "$.output_tokens"),
    "cached_tokens": (
        "$.prompt_tokens_details.cached_tokens",
        "$.input_tokens_details.cached_tokens",
        "$.input_token_details.cached_tokens",
    ),
    "audio_input_tokens": (
        "$.prompt_tokens_details.audio_tokens",
        "$.input_token_details.audio_tokens",
        "$.input_tokens_details.audio_tokens",
    ),
    "cached_audio_tokens": ("$.input_token_details.cached_tokens_details.audio_tokens",),
    "image_input_tokens": ("$.input_tokens_details.image_tokens",),
    "audio_output_tokens": (
        "$.completion_tokens_details.audio_tokens",
        "$.output_token_details.audio_tokens",
    ),
    "reasoning_tokens": (
        "$.completion_tokens_details.reasoning_tokens",
        "$.output_tokens_details.reasoning_tokens",
    ),
}

SUMMARY_SCHEMA = """
    file VARCHAR, id VARCHAR, ts TIMESTAMPTZ, day DATE, user_id VARCHAR, model VARCHAR,
    method VARCHAR, path VARCHAR, status INTEGER, streaming BOOLEAN, is_error BOOLEAN,
    error_type VARCHAR, duration_ms DOUBLE, ttfb_ms DOUBLE,
    input_tokens BIGINT, output_tokens BIGINT, cached_tokens BIGINT,
    audio_input_tokens BIGINT, cached_audio_tokens BIGINT, image_input_tokens BIGINT,
    audio_output_tokens BIGINT, reasoning_tokens BIGINT, audio_seconds DOUBLE,
    speech_characters BIGINT, images BIGINT, image_size VARCHAR, image_quality VARCHAR,
    service_tier VARCHAR, usage_problem VARCHAR, response_model VARCHAR
"""


# Every path is extracted in one json_extract call, so each usage object is parsed once.
_PATHS = [path for paths in USAGE_COUNTS.values() for path in paths] + ["$.type", "$.seconds"]


def _at(path: str) -> str:
    return f"u[{_PATHS.index(path) + 1}]"


def _first(paths: tuple[str, ...]) -> str:
    found = ", ".join(_at(path) for path in paths)
    return f"coalesce({found})" if len(paths) > 1 else found


def _problem(name: str) -> str:
    # A count is absent (null) or a non-negative integer within int64; json_type names
    # anything else (VARCHAR, ARRAY, DOUBLE, UBIGINT beyond int64).
    return (
        f"CASE WHEN j_{name} IS NULL OR json_type(j_{name}) = 'NULL' THEN NULL "
        f"WHEN json_type(j_{name}) NOT IN ('BIGINT', 'UBIGINT') "
        f"THEN '{name} is ' || lower(json_type(j_{name})) "
        f"WHEN TRY_CAST(j_{name} AS BIGINT) IS NULL THEN '{name} is beyond int64' "
        f"WHEN CAST(j_{name} AS BIGINT) < 0 THEN '{name} is negative' END"
    )


def _count(name: str) -> str:
    return (
        f"CASE WHEN usage_problem IS NULL THEN coalesce(TRY_CAST(j_{name} AS BIGINT), 0) "
        f"ELSE 0 END AS {name}"
    )


_EXTRACTED = ",\n        ".join(
    f"{_first(paths)} AS j_{name}" for name, paths in USAGE_COUNTS.items()
)
_PROBLEMS = ", ".join(_problem(name) for name in USAGE_COUNTS)
_COUNTS = ",\n    ".join(_count(name) for name in USAGE_COUNTS)

_SELECT = """
WITH raw AS (
    SELECT
        "__file" AS file, id, "timestamp" AS ts, user_id, model, duration_ms, ttfb_ms,
        request.method AS method, request.path AS path, request.body AS request_body,
        response.status_code AS status, response.streaming AS streaming,
        response.body.usage AS usage, response.body.error.type AS upstream_error_type,
        response.body.service_tier AS service_tier, response.body.duration AS duration,
        response.body.data AS data, response.body.model AS response_model,
        error.type AS proxy_error_type
    FROM read_json(
        $paths, columns = {columns}, format = 'newline_delimited',
        ignore_errors = true, maximum_object_size = {max_line_bytes}
    )
    WHERE id IS NOT NULL AND "timestamp" IS NOT NULL
), extracted AS (
    SELECT *,
        {extracted},
        CASE WHEN {usage_type} = '"duration"' THEN {usage_seconds} ELSE duration END AS j_seconds
    FROM (SELECT *, json_extract(usage, {paths}) AS u FROM raw)
), checked AS (
    SELECT *,
        CASE
            WHEN usage IS NOT NULL AND json_type(usage) NOT IN ('OBJECT', 'NULL')
                THEN 'usage is ' || lower(json_type(usage))
            WHEN j_seconds IS NOT NULL
                 AND json_type(j_seconds) NOT IN ('NULL', 'BIGINT', 'UBIGINT', 'DOUBLE')
                THEN 'seconds is ' || lower(json_type(j_seconds))
            WHEN json_type(j_seconds) IN ('BIGINT', 'DOUBLE') AND CAST(j_seconds AS DOUBLE) < 0
                THEN 'seconds is negative'
            ELSE coalesce({problems})
        END AS usage_problem,
        NOT (status IS NULL OR status >= 400) AS answered
    FROM extracted
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
    {counts},
    CASE WHEN usage_problem IS NULL AND json_type(j_seconds) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
         THEN CAST(j_seconds AS DOUBLE) ELSE 0 END AS audio_seconds,
    CASE WHEN answered AND path LIKE '%/audio/speech' AND json_type(request_body.input) = 'VARCHAR'
         THEN length(json_extract_string(request_body.input, '$')) ELSE 0 END
        AS speech_characters,
    -- Token-billed image models report usage; only the others are priced per image.
    CASE WHEN answered AND path LIKE '%/images/%' AND json_type(data) = 'ARRAY'
              AND (usage IS NULL OR json_type(usage) = 'NULL')
         THEN json_array_length(data) ELSE 0 END AS images,
    CASE WHEN path LIKE '%/images/%' THEN request_body.size END AS image_size,
    CASE WHEN path LIKE '%/images/%' THEN request_body.quality END AS image_quality,
    service_tier, usage_problem, response_model
FROM checked
"""

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Far above a record's size cap (docs/record.md, "Size"); DuckDB's read buffer is sized by it."""

SCAN_SQL = _SELECT.format(
    columns=repr(_COLUMNS).replace('"', "'"),
    max_line_bytes=MAX_LINE_BYTES,
    extracted=_EXTRACTED,
    paths=repr(_PATHS),
    usage_type=_at("$.type"),
    usage_seconds=_at("$.seconds"),
    problems=_PROBLEMS,
    counts=_COUNTS,
)


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
