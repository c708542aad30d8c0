"""Puts tests/docs (markdown_blocks) and tests/integration (server_procs) on sys.path for the docs tests."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent / "integration")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
