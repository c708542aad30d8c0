"""The embedded store's state file: a developer's restart keeps profiles, consent, caps and journey state.

``arbiter serve --state-file PATH`` (embedded store only): the server reads
the file on start (before it serves) into its :class:`~arbiter.state.MemoryStore`,
writes it every ``--state-file-interval`` when something changed, at once
after a ``ForgetCustomer`` (an erased customer must not come back with the
next restart), and a last time on shutdown once in-flight calls are done.

Format (versioned; a new version gets a new number and a reader for the old)::

    arbiter-state <version> <length> <crc32 hex>\\n
    <msgpack body of <length> bytes: a StateFileBody>

The header makes a foreign file (anything else) and a damaged one (length
or checksum off) a clear :class:`StateFileError` naming the file, so the
server refuses to start instead of starting empty and overwriting it at the
next write. The body (:class:`StateFileBody`) holds the store's
:class:`~arbiter.state.memory.MemoryState` and ``sections``: named blobs of
other server components (operator pauses, policy versions...) registered
with :meth:`StateFile.add_section`. A section the reader does not know is
kept and written back unchanged, so an older server does not drop a newer
one's data.

Writes are atomic: the body goes to ``.<name>.tmp`` in the same directory,
is ``fsync``-ed, renamed over ``PATH`` and the directory ``fsync``-ed: a
crash leaves the old file or the new one, never half of one. Encoding and
I/O run in a worker thread; only the copy of the store's containers
(:meth:`MemoryStore.dump_state`, shallow: the snapshots are immutable)
runs on the event loop.

Expiry: idempotency records and event dedup markers keep their *remaining*
lifetime (the store's clock is monotonic and does not survive a restart);
time spent stopped does not count against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from .memory import MemoryState, MemoryStore
from .store import StoreError

__all__ = [
    "FORMAT_VERSION",
    "StateFile",
    "StateFileBody",
    "StateFileError",
    "decode_state_file",
    "encode_state_file",
]

_log = logging.getLogger("arbiter.state")

FORMAT_VERSION: Final = 1
_MAGIC: Final = b"arbiter-state "
_MAX_HEADER: Final = 64


class StateFileError(StoreError):
    """The state file cannot be read (foreign, damaged, a version this server does not know) or
    written; the message names the file."""


class StateFileBody(msgspec.Struct, frozen=True, kw_only=True):
    """What a state file holds (format version 1)."""

    written_ms: int
    store: MemoryState
    sections: dict[str, bytes] = {}


def encode_state_file(body: StateFileBody) -> bytes:
    """The bytes of a state file (header + msgpack body)."""
    data = msgspec.msgpack.encode(body)
    header = f"arbiter-state {FORMAT_VERSION} {len(data)} {zlib.crc32(data):08x}\n".encode()
    return header + data


def decode_state_file(data: bytes, path: str | os.PathLike[str]) -> StateFileBody:
    """The body of a state file's bytes; :class:`StateFileError` naming ``path`` otherwise."""
    end = data.find(b"\n", 0, _MAX_HEADER)
    if not data.startswith(_MAGIC) or end < 0:
        raise StateFileError(
            f"{path}: not an Arbiter state file (move it away, or point --state-file elsewhere)"
        )
    fields = data[len(_MAGIC) : end].split()
    try:
        version, length, crc = int(fields[0]), int(fields[1]), int(fields[2], 16)
    except (IndexError, ValueError):
        raise StateFileError(f"{path}: damaged state file header") from None
    if version != FORMAT_VERSION:
        raise StateFileError(
            f"{path}: state file format {version}; this server reads format {FORMAT_VERSION} "
            "(written by a newer Arbiter?)"
        )
    body = data[end + 1 :]
    if len(body) != length or zlib.crc32(body) != crc:
        raise StateFileError(
            f"{path}: damaged state file ({len(body)} of {length} bytes, checksum "
            f"{'ok' if zlib.crc32(body) == crc else 'wrong'}); restore a copy or move it away"
        )
    try:
        return msgspec.msgpack.decode(body, type=StateFileBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateFileError(f"{path}: unreadable state file: {exc}") from None


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class StateFile:
    """Reads and writes one store's state file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        store: MemoryStore,
        *,
        interval_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.store = store
        self.interval_s = interval_s
        self._sections: dict[str, tuple[Callable[[], bytes], Callable[[bytes], None]]] = {}
        self._kept: dict[str, bytes] = {}  # sections read that no one registered
        self._saved_changes = -1
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.writes = 0

    def add_section(
        self, name: str, dump: Callable[[], bytes], load: Callable[[bytes], None]
    ) -> None:
        """Persist another component's state with the store's: ``dump()`` is called on the event
        loop at each write, ``load(data)`` once by :meth:`load` when the file has the section.
        Register before :meth:`load`. (The hook for operator pauses and policy versions.)"""
        self._sections[name] = (dump, load)

    def load(self) -> bool:
        """Read the file into the store (and the registered sections); ``False`` when there is no
        file yet. :class:`StateFileError` when it cannot be used (the server refuses to start)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        body = decode_state_file(data, self.path)
        self.store.restore_state(body.store)
        for name, blob in body.sections.items():
            section = self._sections.get(name)
            if section is None:
                self._kept[name] = blob
                _log.warning(
                    "state file %s: section %r is not used by this server", self.path, name
                )
                continue
            section[1](blob)
        self._saved_changes = self.store.changes
        return True

    async def save(self, *, force: bool = False) -> bool:
        """Write the file now if anything changed since the last write (or ``force``); ``True``
        when written. :class:`StateFileError` when it cannot be written."""
        async with self._lock:
            changes = self.store.changes
            if changes == self._saved_changes and not force and self.path.exists():
                return False
            body = StateFileBody(
                written_ms=_now_ms(),
                store=self.store.dump_state(),
                sections={**self._kept, **{n: s[0]() for n, s in self._sections.items()}},
            )
            try:
                await asyncio.to_thread(_write_atomically, self.path, encode_state_file(body))
            except OSError as exc:
                raise StateFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
            self._saved_changes = changes
            self.writes += 1
            return True

    def save_soon(self) -> None:
        """Ask :meth:`run` to write now rather than at the next interval (after an erasure)."""
        self._wake.set()

    async def run(self) -> None:
        """Write every ``interval_s`` (sooner after :meth:`save_soon`) until cancelled; a failed
        write is logged and tried again at the next round."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self.save()
            except StateFileError as exc:
                _log.error("%s; trying again in %.0fs", exc, self.interval_s)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
