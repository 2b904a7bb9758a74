"""Counting a command's instructions with valgrind's callgrind: the same code gives the
same count whatever else the machine does (``bench.proxy_cost``, ``bench.publish_cost``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def instructions(module: str, *args: str) -> int:
    """Instructions of a whole run of ``python -m module args...`` (start-up included)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, "-m", module, *args],
            check=True, capture_output=True, env={**os.environ},
        )
        summary = re.search(r"^summary: (\d+)$", out.read_text(), re.MULTILINE)
        if summary is None:
            raise RuntimeError("callgrind wrote no summary")
        return int(summary.group(1))
