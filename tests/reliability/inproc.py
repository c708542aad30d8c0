"""The in-process server of the integration suite (``ServerHandle``), importable from here.

``tests/integration/conftest.py`` is loaded under a name of its own: importing it
as ``conftest`` would pick whichever suite's conftest a full run imported last.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "arbiter_tests_integration_conftest"
_module = sys.modules.get(_NAME)
if _module is None:
    _path = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
    _spec = importlib.util.spec_from_file_location(_NAME, _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

ServerHandle = _module.ServerHandle
fresh_customer = _module.fresh_customer

__all__ = ["ServerHandle", "fresh_customer"]
