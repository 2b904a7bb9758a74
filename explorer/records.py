"""One record, read from its file when it is opened, and the readable parts of it.

The ``calls`` table says which file holds an id; the file is then read and the line with
that id is parsed. Nothing else reads a whole record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from explorer.index import Index
from explorer.partitions import Selection


def _file_of(index: Index, record_id: str) -> tuple[str, int] | None:
    with index.connection() as con:
        row = con.execute("SELECT file FROM calls WHERE id = $id LIMIT 1", {"id": record_id})
        found = row.fetchone()
    if found is None:
        return None
    for file in index.listing():
        if file.stored.name == found[0]:
            return file.stored.name, file.stored.size_bytes
    return None


def find_record(index: Index, record_id: str) -> dict[str, Any] | None:
    """The record with ``record_id``, or None when no file holds it."""
    located = _file_of(index, record_id)
    if located is None:
        index.sync(Selection())  # an id from a bookmark: every file must be known
        located = _file_of(index, record_id)
    if located is None:
        return None
    name, size_bytes = located
    data = index.store.read_bytes(name, size_bytes)
    quoted = json.dumps(record_id).encode()
    start = 0
    while (at := data.find(quoted, start)) >= 0:
        line_start = data.rfind(b"\n", 0, at) + 1
        line_end = data.find(b"\n", at)
        line = data[line_start : line_end if line_end >= 0 else len(data)]
        start = at + len(quoted)
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("id") == record_id:
            return record
    return None


@dataclass
class Message:
    """One turn of a conversation, as text."""

    role: str
    text: str
    extra: list[str] = field(default_factory=list)
    """Non-text parts (images, tool calls) as short JSON."""


def _content_text(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    extra: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part is not None:
                extra.append(json.dumps(part, ensure_ascii=False)[:2000])
    elif content is not None:
        extra.append(json.dumps(content, ensure_ascii=False)[:2000])
    return "\n".join(texts), extra


def _message(item: dict[str, Any], default_role: str) -> Message:
    text, extra = _content_text(item.get("content"))
    for key in ("tool_calls", "function_call"):
        if item.get(key):
            extra.append(json.dumps(item[key], ensure_ascii=False)[:4000])
    if item.get("type") in ("function_call", "function_call_output"):
        extra.append(json.dumps(item, ensure_ascii=False)[:4000])
    return Message(str(item.get("role") or item.get("type") or default_role), text, extra)


def prompt_messages(record: dict[str, Any]) -> list[Message]:
    """What was asked: chat messages, Responses input, a completion prompt or embedding input."""
    body = (record.get("request") or {}).get("body")
    if not isinstance(body, dict):
        return [Message("body", body)] if isinstance(body, str) else []
    messages: list[Message] = []
    if isinstance(body.get("instructions"), str):
        messages.append(Message("instructions", body["instructions"]))
    for key in ("messages", "input", "prompt"):
        value = body.get(key)
        if isinstance(value, str):
            messages.append(Message("user" if key != "prompt" else "prompt", value))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    messages.append(_message(item, "user"))
                elif isinstance(item, str):
                    messages.append(Message(key, item))
    return messages


def answer_messages(record: dict[str, Any]) -> list[Message]:
    """What came back: the (assembled) choices or Responses output."""
    body = (record.get("response") or {}).get("body")
    if not isinstance(body, dict):
        return [Message("body", body)] if isinstance(body, str) else []
    answers: list[Message] = []
    for choice in body.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("message"), dict):
            message = _message(choice["message"], "assistant")
        else:
            message = Message("assistant", str(choice.get("text") or ""))
        if choice.get("finish_reason"):
            message.extra.append(f"finish_reason: {choice['finish_reason']}")
        answers.append(message)
    for item in body.get("output") or []:
        if isinstance(item, dict):
            answers.append(_message(item, "assistant"))
    return answers


def pretty(value: Any) -> str:
    """JSON for reading: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
