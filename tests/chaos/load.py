"""Bounded load through the proxy with the official ``openai`` SDK, remembering record ids."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import openai

from tests.support.waiting import wait_until

MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini")


@dataclass
class Tally:
    """What the clients saw: every call made, and the record id of each that succeeded."""

    calls: int = 0
    succeeded_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """``threads`` clients calling in a loop until ``stop`` or ``max_calls`` (a context manager).

    Every fifth call streams. Clients are spread over ``base_urls`` (one per proxy).
    """

    def __init__(
        self, base_urls: Sequence[str], *, threads: int = 4, max_calls: int = 4000
    ) -> None:
        self.base_urls = list(base_urls)
        self.max_calls = max_calls
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Tally:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.tally

    def wait_calls(self, count: int, timeout_s: float = 60) -> None:
        """Block until at least ``count`` calls were made."""
        with contextlib.suppress(AssertionError):  # the scenario reports the calls it got
            wait_until(lambda: self.tally.calls >= count, timeout_s, interval_s=0.02)

    def _client(self, number: int) -> None:
        base_url = self.base_urls[number % len(self.base_urls)]
        client = openai.OpenAI(
            base_url=f"{base_url}/v1", api_key="sk-chaos-client", max_retries=0, timeout=15
        )
        turn = 0
        while not self._stop.is_set():
            with self.tally.lock:
                if self.tally.calls >= self.max_calls:
                    return
                self.tally.calls += 1
            turn += 1
            try:
                record_id = self._call(client, MODELS[turn % len(MODELS)], stream=turn % 5 == 0)
            except openai.OpenAIError as exc:
                with self.tally.lock:
                    self.tally.errors.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            with self.tally.lock:
                self.tally.succeeded_ids.append(record_id)

    @staticmethod
    def _call(client: openai.OpenAI, model: str, *, stream: bool) -> str:
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": "Say hello to the chaos suite"}
        ]
        if stream:
            streamed = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, stream=True
            )
            for _ in streamed.parse():
                pass
            return streamed.headers["x-proxy-record-id"]
        reply = client.chat.completions.with_raw_response.create(model=model, messages=messages)
        reply.parse()
        return reply.headers["x-proxy-record-id"]
