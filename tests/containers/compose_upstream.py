"""The upstream of `make compose-check`: a tiny OpenAI stand-in on the compose network.

Run inside the proxy image (uvicorn is there): ``python /check/upstream.py``. It answers
``POST /v1/chat/completions`` with a completion and ``GET /v1/models`` with one model.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import uvicorn

Scope = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/v1/models":
        body: dict[str, Any] = {"object": "list", "data": [{"id": "gpt-4o-mini",
                                                            "object": "model"}]}
    else:
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hello"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=9000, log_level="warning", lifespan="off")
