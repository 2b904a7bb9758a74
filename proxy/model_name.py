"""Which model an exchange is about: from the body, a form field, the query or the path."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote

_MODELS_PATH = "/v1/models/"
_MODEL_FIELD = re.compile(rb'"model"\s*:\s*("(?:[^"\\]|\\.)*")')


def _from_json_text(text: bytes) -> str | None:
    match = _MODEL_FIELD.search(text)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def model_of(path: str, query: str, body: Any, head: bytes = b"", tail: bytes = b"") -> str | None:
    """The model named by a request, or ``None``.

    ``body`` is the request body as recorded; when it was truncated, ``head`` and
    ``tail`` (its first and last bytes) are searched for a ``"model"`` field instead.
    """
    if isinstance(body, dict):
        if isinstance(body.get("model"), str):
            return str(body["model"])
        fields = body.get("fields")
        if body.get("multipart") and isinstance(fields, dict):
            if isinstance(fields.get("model"), str) and fields["model"]:
                return str(fields["model"])
        if body.get("truncated"):
            found = _from_json_text(head) or _from_json_text(tail)
            if found:
                return found
    models = parse_qs(query).get("model")
    if models and models[0]:
        return models[0]
    if path.startswith(_MODELS_PATH) and len(path) > len(_MODELS_PATH):
        return unquote(path[len(_MODELS_PATH) :])
    return None
