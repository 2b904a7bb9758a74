"""Chat and legacy completions streams, assembled into the object the plain call returns.

Text arrives as pieces (content, refusal, tool-call arguments); they are kept in
``TextBuffer``s, joined once in ``result()`` and cut (and marked) past the cap.
"""

from __future__ import annotations

from typing import Any

from proxy.capture.limits import CaptureLimits, TextBuffer
from proxy.capture.sse import SSEEvent, SSEParser

Json = dict[str, Any]

_DONE = "[DONE]"


def _extend_lists(
    into: dict[str, list[Any]] | None, logprobs: Json, max_items: int
) -> dict[str, list[Any]]:
    """Logprobs arrive as lists per chunk (``content``, ``tokens``, ...); they concatenate.

    Each list keeps at most ``max_items``; ``{key}_truncated`` counts the entries cut.
    """
    into = {} if into is None else into
    for key, items in logprobs.items():
        if isinstance(items, list):
            kept = into.setdefault(key, [])
            room = max(max_items - len(kept), 0)
            kept.extend(items[:room])
            if len(items) > room:
                cut = into.setdefault(f"{key}_truncated", [0])
                cut[0] += len(items) - room
    return into


def _shown_logprobs(logprobs: dict[str, list[Any]]) -> Json:
    return {
        key: items[0] if key.endswith("_truncated") else items for key, items in logprobs.items()
    }


class _Choice:
    """One choice of a chat stream, its text kept as lists of pieces."""

    __slots__ = (
        "content",
        "finish_reason",
        "function_call",
        "limits",
        "logprobs",
        "refusal",
        "role",
        "tool_calls",
    )

    def __init__(self, limits: CaptureLimits) -> None:
        self.limits = limits
        self.role: str | None = None
        self.content: TextBuffer | None = None
        self.refusal: TextBuffer | None = None
        self.tool_calls: dict[int, _ToolCall] = {}
        self.function_call: _ToolCall | None = None
        self.logprobs: dict[str, list[Any]] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: Json) -> None:
        delta = choice.get("delta") or {}
        if delta.get("role"):
            self.role = delta["role"]
        if isinstance(content := delta.get("content"), str):
            if self.content is None:
                self.content = TextBuffer(self.limits.body_bytes)
            self.content.append(content)
        if isinstance(refusal := delta.get("refusal"), str):
            if self.refusal is None:
                self.refusal = TextBuffer(self.limits.body_bytes)
            self.refusal.append(refusal)
        for call in delta.get("tool_calls") or ():
            index = call.get("index", len(self.tool_calls))
            if index not in self.tool_calls and len(self.tool_calls) >= self.limits.events:
                continue
            self.tool_calls.setdefault(index, _ToolCall(self.limits)).add(call)
        if (function_call := delta.get("function_call")) is not None:
            if self.function_call is None:
                self.function_call = _ToolCall(self.limits)
            self.function_call.add({"function": function_call})
        if logprobs := choice.get("logprobs"):
            self.logprobs = _extend_lists(self.logprobs, logprobs, self.limits.events)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]

    def json(self, index: int) -> Json:
        logprobs = None
        if self.logprobs is not None:
            logprobs = {"content": None, "refusal": None, **_shown_logprobs(self.logprobs)}
        return {
            "index": index,
            "message": self._message(),
            "logprobs": logprobs,
            "finish_reason": self.finish_reason,
        }

    def _message(self) -> Json:
        message: Json = {
            "role": self.role or "assistant",
            "content": self.content.value() if self.content is not None else None,
            "refusal": self.refusal.value() if self.refusal is not None else None,
        }
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].json() for i in sorted(self.tool_calls)]
        if self.function_call is not None:
            message["function_call"] = self.function_call.json()["function"]
        return message


class _ToolCall:
    """A tool call whose name and arguments arrive in pieces."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self, limits: CaptureLimits) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name = TextBuffer(limits.body_bytes)
        self.arguments = TextBuffer(limits.body_bytes)

    def add(self, call: Json) -> None:
        if call.get("id"):
            self.id = call["id"]
        if call.get("type"):
            self.type = call["type"]
        function = call.get("function") or {}
        if isinstance(name := function.get("name"), str) and name:
            self.name.append(name)
        if isinstance(arguments := function.get("arguments"), str) and arguments:
            self.arguments.append(arguments)

    def json(self) -> Json:
        return {
            "id": self.id,
            "type": self.type or "function",
            "function": {"name": self.name.value(), "arguments": self.arguments.value()},
        }


class _TextChoice:
    """One choice of a legacy completions stream."""

    __slots__ = ("finish_reason", "limits", "logprobs", "text")

    def __init__(self, limits: CaptureLimits) -> None:
        self.limits = limits
        self.text = TextBuffer(limits.body_bytes)
        self.logprobs: dict[str, list[Any]] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: Json) -> None:
        if isinstance(text := choice.get("text"), str) and text:
            self.text.append(text)
        if logprobs := choice.get("logprobs"):
            self.logprobs = _extend_lists(self.logprobs, logprobs, self.limits.events)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]

    def json(self, index: int) -> Json:
        return {
            "text": self.text.value(),
            "index": index,
            "logprobs": _shown_logprobs(self.logprobs) if self.logprobs is not None else None,
            "finish_reason": self.finish_reason,
        }


class _ChoicesAssembler:
    """Chunks that each carry a few head fields, ``usage`` and deltas of indexed choices."""

    object_type: str
    head_keys: tuple[str, ...]
    choice_type: type[_Choice] | type[_TextChoice]

    def __init__(self, limits: CaptureLimits | None = None) -> None:
        self._limits = limits or CaptureLimits()
        self._parser = SSEParser(self._limits.sse_line_chars)
        self._head: Json = {}
        self._choices: dict[int, _Choice | _TextChoice] = {}
        self._usage: Any = None
        self._error: Any = None

    def feed(self, data: bytes) -> None:
        """Raw upstream bytes, as they arrive."""
        for event in self._parser.feed(data):
            self._on_event(event)

    def _on_event(self, event: SSEEvent) -> None:
        if event.data == _DONE:
            return
        chunk = event.parsed()
        if not isinstance(chunk, dict):
            return
        if chunk.get("error"):
            self._error = chunk["error"]
            return
        for key in self.head_keys:
            if (value := chunk.get(key)) is not None:
                self._head[key] = value
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self._choices.get(index)
            if state is None:
                if len(self._choices) >= self._limits.events:
                    continue
                state = self._choices[index] = self.choice_type(self._limits)
            state.add(choice)

    def result(self) -> Json:
        """The assembled object; the bytes fed so far count as the whole stream."""
        for event in self._parser.flush():
            self._on_event(event)
        completion: Json = {
            "id": self._head.get("id"),
            "object": self.object_type,
            **{key: self._head.get(key) for key in self.head_keys[1:]},
            "choices": [self._choices[i].json(i) for i in sorted(self._choices)],
            "usage": self._usage,
        }
        if self._error is not None:
            completion["error"] = self._error
        if self._parser.skipped:
            completion["sse_truncated"] = self._parser.skipped
        return completion


class ChatCompletionAssembler(_ChoicesAssembler):
    """``chat.completion.chunk`` events -> one ``chat.completion``."""

    object_type = "chat.completion"
    head_keys = ("id", "created", "model", "system_fingerprint", "service_tier")
    choice_type = _Choice


class CompletionAssembler(_ChoicesAssembler):
    """Legacy ``text_completion`` chunks -> one ``text_completion``."""

    object_type = "text_completion"
    head_keys = ("id", "created", "model", "system_fingerprint")
    choice_type = _TextChoice
