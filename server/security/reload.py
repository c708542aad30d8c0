"""Reload certificates, JWKS and API key files on SIGHUP or when their files change (``watchfiles``).

The directories holding the files are watched (not the files themselves),
so atomic replacements -- a rename over the file, or Kubernetes swapping
the ``..data`` symlink of a mounted secret -- are seen. Each source decides
whether its content changed; a source that fails to load keeps its last
good state and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles

__all__ = ["Reloader"]

_log = logging.getLogger("arbiter.reload")


class Reloader:
    """Sources (files + a reload callback), reloaded together on :meth:`reload` or a file change."""

    def __init__(self) -> None:
        self._sources: list[tuple[frozenset[Path], Callable[[], object]]] = []

    def add(self, files: Iterable[str], reload: Callable[[], object]) -> None:
        """Watch the directories of ``files``; call ``reload`` when anything in them changes."""
        directories = frozenset(Path(os.path.abspath(f)).parent for f in files)
        if directories:
            self._sources.append((directories, reload))

    @property
    def directories(self) -> frozenset[Path]:
        return frozenset().union(*(d for d, _ in self._sources))

    def reload(self, directories: Iterable[Path] | None = None) -> None:
        """Reload every source (or those watching one of ``directories``); never raises."""
        wanted = None if directories is None else set(directories)
        for watched, callback in self._sources:
            if wanted is not None and not watched & wanted:
                continue
            try:
                callback()
            except Exception:  # a broken source must not stop the others or the watcher
                _log.exception("reload failed")

    async def watch(self, stop: asyncio.Event, *, debounce_ms: int = 200) -> None:
        """Reload on file changes until ``stop`` is set."""
        directories = sorted(self.directories)
        if not directories:
            return
        _log.info(
            "watching %s for certificate and credential changes", ", ".join(map(str, directories))
        )
        changes_iter = watchfiles.awatch(
            *directories,
            stop_event=stop,
            debounce=debounce_ms,
            step=50,
            watch_filter=None,
            recursive=True,
        )
        with contextlib.suppress(asyncio.CancelledError):
            async for changes in changes_iter:
                touched = {d for d in directories for _, p in changes if Path(p).is_relative_to(d)}
                await asyncio.to_thread(self.reload, touched)
