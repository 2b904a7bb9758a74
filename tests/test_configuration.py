"""A bad configuration stops either service at start-up with a clear message and no secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "sk-do-not-print-3b1f"


@pytest.mark.parametrize(
    ("service", "env", "complaint"),
    [
        ("proxy", {"PROXY_API_KEYS": SECRET}, "PROXY_API_KEYS"),
        ("proxy", {"AUTH_MODE": "sometimes", "OPENAI_API_KEY": SECRET}, "AUTH_MODE"),
        ("shipper", {"STORAGE_TYPE": "azure", "AZURE_STORAGE_ACCOUNT_KEY": SECRET}, "AZURE"),
    ],
)
def test_bad_settings_exit_2_naming_the_variable_not_the_secret(
    tmp_path: Path, service: str, env: dict[str, str], complaint: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", service],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and complaint in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_the_proxys_redis_timeout_is_read_under_its_new_and_its_former_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxy.settings import ProxySettings

    monkeypatch.setenv("REDIS_TIMEOUT_S", "3")
    assert ProxySettings(_env_file=None).proxy_redis_timeout_s == 3  # type: ignore[call-arg]
    monkeypatch.setenv("PROXY_REDIS_TIMEOUT_S", "4")
    assert ProxySettings(_env_file=None).proxy_redis_timeout_s == 4  # type: ignore[call-arg]
