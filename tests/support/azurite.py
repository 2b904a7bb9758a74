"""Azurite (the Azure Storage emulator) on a free port, in memory, for the Azure tests.

The binary is ``azurite-blob`` on ``PATH``; ``make test`` installs it in ``.tools/``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.ports import free_port, wait_for_port

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = Path(__file__).resolve().parents[2] / ".tools/node_modules/.bin/azurite-blob"
    binary = shutil.which("azurite-blob") or (str(local) if local.exists() else None)
    if not binary:
        raise RuntimeError("azurite-blob not found: run `make test`, which installs it")
    return binary


class Azurite:
    """One Azurite blob service; ``stop``/``start`` simulate an outage.

    In memory by default (a restart loses the data); ``persistent=True`` keeps the data
    in ``workdir``, so a restart is an outage and not a wipe.
    """

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.persistent = persistent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        in_memory = ["--inMemoryPersistence"]
        storage = ["--location", str(self.workdir)] if self.persistent else in_memory
        self._process = subprocess.Popen(
            [
                azurite_binary(),
                "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port),
                *storage,
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
                "--silent",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout_s=30)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
