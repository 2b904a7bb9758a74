"""The bodies the fake upstream answers with, in the shapes of the OpenAI API reference.

Each reply class builds both answers to one request: the non-streaming object and
the SSE events of the streaming call, from the same content, so a test can check
that a stream assembles to exactly what the plain call returns.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

Json = dict[str, Any]

SYSTEM_FINGERPRINT = "fp_fake0001"
LONG_STREAM_CHUNKS = 50
HUGE_PIECES = 3000
HUGE_PIECE_CHARS = 1000
"""Model ``huge``: 3 MB of text (3,000 pieces of 1,000 characters), past every record cap."""
CONTENT_PIECES = (["Hello", " world", "!"], ["Hello", " again", "!"])
"""Choice 0 says "Hello world!", choice 1 (when ``n`` is 2) "Hello again!"."""
TOOL_ARGUMENT_PIECES = ['{"loc', 'ation": ', '"Paris"', "}"]


def new_id(prefix: str) -> str:
    """An id in the API's style: ``chatcmpl-...``, ``resp_...``, ``file-...``."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def sse(data: Json | str, event: str | None = None) -> bytes:
    """One server-sent event, as the API frames it (compact JSON)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


STABLE_CREATED = 1_700_000_000


def reply_identity(prefix: str, body: Json, stable: bool) -> tuple[str, int]:
    """A reply's id and ``created``: new ones, or (``stable``) the same for the same request
    whatever its ``stream_options``, so two calls can be compared byte for byte."""
    if not stable:
        return new_id(prefix), int(time.time())
    asked = {key: value for key, value in body.items() if key != "stream_options"}
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
    return f"{prefix}{digest[:24]}", STABLE_CREATED


def obfuscation(piece: str) -> str:
    """The padding the API adds to content chunks (``obfuscation``), here a function of the
    piece so that it is the same in two calls."""
    return hashlib.sha256(piece.encode()).hexdigest()[: 4 + len(piece) % 7]


def count_tokens(value: Any) -> int:
    """A stand-in tokenizer: the words in every string found in ``value``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_tokens(item) for item in value)
    if isinstance(value, dict):
        return sum(count_tokens(item) for item in value.values())
    return 0


def content_pieces(model: Any, choice: int = 0) -> list[str]:
    """What choice ``choice`` says, piece by piece (one piece per streamed chunk)."""
    if model == "long-stream":
        return [f"token{k} " for k in range(LONG_STREAM_CHUNKS)]
    if model == "huge":
        return [f"{k:06d}" + "x" * (HUGE_PIECE_CHARS - 6) for k in range(HUGE_PIECES)]
    return CONTENT_PIECES[choice % len(CONTENT_PIECES)]


def _chat_usage(prompt_tokens: int, completion_tokens: int) -> Json:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class ChatReply:
    """``chat.completion`` and its ``chat.completion.chunk`` stream, for one request body."""

    def __init__(self, body: Json, stable: bool = False) -> None:
        self.model = body.get("model")
        self.id, self.created = reply_identity("chatcmpl-", body, stable)
        self.n = min(max(int(body.get("n") or 1), 1), 2)
        tools = body.get("tools") or []
        self.tool_name: str | None = tools[0]["function"]["name"] if tools else None
        self.call_ids = [new_id("call_") for _ in range(self.n)]
        self.pieces = [
            TOOL_ARGUMENT_PIECES if self.tool_name else content_pieces(self.model, choice)
            for choice in range(self.n)
        ]
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.usage = _chat_usage(
            max(1, count_tokens(body.get("messages"))),
            sum(len(pieces) for pieces in self.pieces),
        )

    def _finish_reason(self) -> str:
        return "tool_calls" if self.tool_name else "stop"

    def completion(self) -> Json:
        """What the non-streaming call returns."""
        choices = []
        for choice in range(self.n):
            message: Json = {"role": "assistant", "content": None, "refusal": None}
            text = "".join(self.pieces[choice])
            if self.tool_name:
                message["tool_calls"] = [
                    {
                        "id": self.call_ids[choice],
                        "type": "function",
                        "function": {"name": self.tool_name, "arguments": text},
                    }
                ]
            else:
                message["content"] = text
            message["annotations"] = []
            choices.append(
                {
                    "index": choice,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish_reason(),
                }
            )
        return {**self._head("chat.completion"), "choices": choices, "usage": self.usage}

    def _head(self, kind: str) -> Json:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def _chunk(self, choice: int, delta: Json, finish_reason: str | None = None) -> Json:
        chunk: Json = {
            **self._head("chat.completion.chunk"),
            "choices": [
                {"index": choice, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None  # as the API does: on every chunk, once usage is asked for
        if isinstance(piece := delta.get("content"), str) and piece:
            chunk["obfuscation"] = obfuscation(piece)  # after usage, as the API puts it
        return chunk

    def _first_delta(self, choice: int) -> Json:
        if not self.tool_name:
            return {"role": "assistant", "content": "", "refusal": None}
        call = {
            "index": 0,
            "id": self.call_ids[choice],
            "type": "function",
            "function": {"name": self.tool_name, "arguments": ""},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}

    def _piece_delta(self, piece: str) -> Json:
        if self.tool_name:
            return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        return {"content": piece}

    def chunks(self) -> list[Json]:
        """The stream's data objects; with ``n`` = 2 the two choices interleave."""
        chunks = [self._chunk(choice, self._first_delta(choice)) for choice in range(self.n)]
        for step in range(len(self.pieces[0])):
            for choice in range(self.n):
                piece = self.pieces[choice][step]
                chunks.append(self._chunk(choice, self._piece_delta(piece)))
        for choice in range(self.n):
            chunks.append(self._chunk(choice, {}, self._finish_reason()))
        if self.include_usage:
            head = self._head("chat.completion.chunk")
            chunks.append({**head, "choices": [], "usage": self.usage})
        return chunks

    def events(self) -> list[bytes]:
        """The SSE stream, ending with ``data: [DONE]``."""
        return [sse(chunk) for chunk in self.chunks()] + [sse("[DONE]")]


class LegacyReply:
    """``text_completion`` (the legacy completions endpoint) and its stream."""

    def __init__(self, body: Json, stable: bool = False) -> None:
        self.model = body.get("model")
        self.id, self.created = reply_identity("cmpl-", body, stable)
        self.n = min(max(int(body.get("n") or 1), 1), 2)
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.pieces = [content_pieces(self.model, choice) for choice in range(self.n)]
        completion_tokens = sum(len(pieces) for pieces in self.pieces)
        prompt_tokens = max(1, count_tokens(body.get("prompt")))
        self.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def _object(self, choices: list[Json]) -> Json:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }

    @staticmethod
    def _choice(index: int, text: str, finish_reason: str | None) -> Json:
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}

    def completion(self) -> Json:
        """What the non-streaming call returns."""
        choices = [self._choice(c, "".join(pieces), "stop") for c, pieces in enumerate(self.pieces)]
        return {**self._object(choices), "usage": self.usage}

    def events(self) -> list[bytes]:
        """The SSE stream, ending with ``data: [DONE]``."""
        chunks = []
        for step in range(len(self.pieces[0])):
            for choice in range(self.n):
                text = self.pieces[choice][step]
                chunks.append(self._object([self._choice(choice, text, None)]))
        for choice in range(self.n):
            chunks.append(self._object([self._choice(choice, "", "stop")]))
        if self.include_usage:
            chunks = [{**chunk, "usage": None} for chunk in chunks]
            chunks.append({**self._object([]), "usage": self.usage})
        return [sse(chunk) for chunk in chunks] + [sse("[DONE]")]


class ResponsesReply:
    """A Responses API ``response`` and its typed event stream."""

    def __init__(self, body: Json) -> None:
        self.body = body
        self.model = body.get("model")
        self.id = new_id("resp_")
        self.item_id = new_id("msg_")
        self.created_at = int(time.time())
        self.pieces = content_pieces(self.model)
        prompt = [body.get("input"), body.get("instructions")]
        input_tokens = max(1, count_tokens(prompt))
        output_tokens = len(self.pieces)
        self.usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }

    def _part(self, text: str) -> Json:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _item(self, status: str, content: list[Json]) -> Json:
        return {
            "id": self.item_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _response(self, status: str, output: list[Json], usage: Json | None) -> Json:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": self.body.get("instructions"),
            "max_output_tokens": self.body.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def final(self) -> Json:
        """What the non-streaming call returns."""
        text = "".join(self.pieces)
        item = self._item("completed", [self._part(text)])
        return self._response("completed", [item], self.usage)

    def events(self) -> list[bytes]:
        """``response.created`` ... ``response.completed``, each as ``event:`` + ``data:``."""
        text = "".join(self.pieces)
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        payloads: list[Json] = [
            {"type": "response.created", "response": self._response("in_progress", [], None)},
            {"type": "response.in_progress", "response": self._response("in_progress", [], None)},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": self._item("in_progress", []),
            },
            {"type": "response.content_part.added", **where, "part": self._part("")},
            *(
                {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
                for piece in self.pieces
            ),
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": self._part(text)},
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": self._item("completed", [self._part(text)]),
            },
            {"type": "response.completed", "response": self.final()},
        ]
        return [
            sse({"type": p["type"], "sequence_number": n, **p}, event=p["type"])
            for n, p in enumerate(payloads)
        ]
