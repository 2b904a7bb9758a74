"""Chat and legacy completions streams, assembled into the object the plain call returns.

Text arrives as pieces (content, refusal, tool-call arguments); they are kept in
lists and joined once, in ``result()``.
"""

from __future__ import annotations

from typing import Any

from proxy.capture.sse import SSEEvent, SSEParser

Json = dict[str, Any]

_DONE = "[DONE]"


def _extend_lists(into: dict[str, list[Any]] | None, logprobs: Json) -> dict[str, list[Any]]:
    """Logprobs arrive as lists per chunk (``content``, ``tokens``, ...); they concatenate."""
    into = {} if into is None else into
    for key, items in logprobs.items():
        if isinstance(items, list):
            into.setdefault(key, []).extend(items)
    return into


class _Choice:
    """One choice of a chat stream, its text kept as lists of pieces."""

    __slots__ = (
        "content",
        "finish_reason",
        "function_call",
        "logprobs",
        "refusal",
        "role",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, _ToolCall] = {}
        self.function_call: _ToolCall | None = None
        self.logprobs: dict[str, list[Any]] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: Json) -> None:
        delta = choice.get("delta") or {}
        if delta.get("role"):
            self.role = delta["role"]
        if (content := delta.get("content")) is not None:
            if self.content is None:
                self.content = []
            self.content.append(content)
        if (refusal := delta.get("refusal")) is not None:
            if self.refusal is None:
                self.refusal = []
            self.refusal.append(refusal)
        for call in delta.get("tool_calls") or ():
            index = call.get("index", len(self.tool_calls))
            self.tool_calls.setdefault(index, _ToolCall()).add(call)
        if (function_call := delta.get("function_call")) is not None:
            if self.function_call is None:
                self.function_call = _ToolCall()
            self.function_call.add({"function": function_call})
        if logprobs := choice.get("logprobs"):
            self.logprobs = _extend_lists(self.logprobs, logprobs)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]

    def json(self, index: int) -> Json:
        logprobs = None
        if self.logprobs is not None:
            logprobs = {"content": None, "refusal": None, **self.logprobs}
        return {
            "index": index,
            "message": self._message(),
            "logprobs": logprobs,
            "finish_reason": self.finish_reason,
        }

    def _message(self) -> Json:
        message: Json = {
            "role": self.role or "assistant",
            "content": "".join(self.content) if self.content is not None else None,
            "refusal": "".join(self.refusal) if self.refusal is not None else None,
        }
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].json() for i in sorted(self.tool_calls)]
        if self.function_call is not None:
            message["function_call"] = self.function_call.json()["function"]
        return message


class _ToolCall:
    """A tool call whose name and arguments arrive in pieces."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: list[str] = []
        self.arguments: list[str] = []

    def add(self, call: Json) -> None:
        if call.get("id"):
            self.id = call["id"]
        if call.get("type"):
            self.type = call["type"]
        function = call.get("function") or {}
        if function.get("name"):
            self.name.append(function["name"])
        if function.get("arguments"):
            self.arguments.append(function["arguments"])

    def json(self) -> Json:
        return {
            "id": self.id,
            "type": self.type or "function",
            "function": {"name": "".join(self.name), "arguments": "".join(self.arguments)},
        }


class _TextChoice:
    """One choice of a legacy completions stream."""

    __slots__ = ("finish_reason", "logprobs", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.logprobs: dict[str, list[Any]] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: Json) -> None:
        if choice.get("text"):
            self.text.append(choice["text"])
        if logprobs := choice.get("logprobs"):
            self.logprobs = _extend_lists(self.logprobs, logprobs)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]

    def json(self, index: int) -> Json:
        return {
            "text": "".join(self.text),
            "index": index,
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }


class _ChoicesAssembler:
    """Chunks that each carry a few head fields, ``usage`` and deltas of indexed choices."""

    object_type: str
    head_keys: tuple[str, ...]
    choice_type: type[_Choice] | type[_TextChoice]

    def __init__(self) -> None:
        self._parser = SSEParser()
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
                state = self._choices[index] = self.choice_type()
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
