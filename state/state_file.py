"""The embedded store's state file: a developer's restart keeps profiles, consent, caps and journey state.

``arbiter serve --state-file PATH`` (embedded store only): the server reads
the file on start (before it serves) into its :class:`~arbiter.state.MemoryStore`,
writes it every ``--state-file-interval`` when something changed, at once
after a ``ForgetCustomer`` (an erased customer must not come back with the
next restart), and a last time on shutdown once in-flight calls are done.

Format (versioned; a new version gets a new number and a reader for the old)::

    arbiter-state <version> <length> <crc32 hex>\n
    <body: <length> bytes of frames, each a 4-byte big-endian size + msgpack>
      frames 1..n-1: a list of StoredCustomer each (a few hundred per frame)
      frame n:       StateFileHeader (written_ms, sections, customers: how many came)

The header line makes a foreign file (anything else) and a damaged one
(length, checksum, or frames that do not add up) a clear
:class:`StateFileError` naming the file, so the server refuses to start
instead of starting empty and overwriting it at the next write.
``sections`` are named blobs of other server components (operator pauses,
policy versions...) registered with :meth:`StateFile.add_section`; a
section the reader does not know is kept and written back unchanged, so an
older server does not drop a newer one's data.

Writes are atomic: the file goes to ``.<name>.tmp`` in the same directory,
is ``fsync``-ed, renamed over ``PATH`` and the directory ``fsync``-ed: a
crash leaves the old file or the new one, never half of one. The copy of
the store (:meth:`MemoryStore.dump_chunks`: shallow -- the snapshots are
immutable -- a few hundred customers per hold of the store's lock), the
encoding (one frame per chunk, written as it is made: no long call holding
the GIL, no copy of the whole body) and the I/O run in a worker thread, so the event loop keeps serving; only the
registered sections are dumped on the loop.

Expiry: idempotency records and event dedup markers keep their *remaining*
lifetime (the store's clock is monotonic and does not survive a restart);
time spent stopped does not count against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Final

import msgspec

from .memory import MemoryStore, StoredCustomer
from .store import StoreError

__all__ = [
    "FORMAT_VERSION",
    "StateFile",
    "StateFileError",
    "StateFileHeader",
    "decode_state_file",
    "encode_state_file",
    "write_state_file",
]

_log = logging.getLogger("arbiter.state")

FORMAT_VERSION: Final = 1
_MAGIC: Final = b"arbiter-state "
_MAX_HEADER: Final = 64
_FRAME: Final = struct.Struct(">I")
# Customers per frame (and per hold of the store's lock): few enough that the objects of one
# chunk die young instead of feeding the garbage collector's oldest generation.
_CHUNK_CUSTOMERS: Final = 64


class StateFileError(StoreError):
    """The state file cannot be read (foreign, damaged, a version this server does not know) or
    written; the message names the file."""


class StateFileHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The first frame of a state file (format version 1)."""

    written_ms: int
    sections: dict[str, bytes] = {}
    customers: int = 0


_HEADER: Final = msgspec.msgpack.Decoder(StateFileHeader)
_CHUNK: Final = msgspec.msgpack.Decoder(list[StoredCustomer])


def _frame(data: bytes) -> bytes:
    return _FRAME.pack(len(data)) + data


def _header_line(length: int, crc: int) -> bytes:
    # Fixed width, so that a writer can reserve it and fill it in after the body.
    return f"arbiter-state {FORMAT_VERSION} {length:020d} {crc:08x}\n".encode()


def encode_state_file(
    header: StateFileHeader, chunks: Iterable[list[StoredCustomer]] = ()
) -> bytes:
    """The bytes of a state file (``header.customers`` is set from the chunks)."""
    buffer = io.BytesIO()
    write_state_file(buffer, header, chunks)
    return buffer.getvalue()


def write_state_file(
    handle: BinaryIO, header: StateFileHeader, chunks: Iterable[list[StoredCustomer]]
) -> None:
    """Write a state file to ``handle`` (seekable, positioned at 0) frame by frame, never
    holding the whole body in memory: a reserved header line, the customer frames, then the
    header frame (which counts them); finally the header line is filled in with the length
    and checksum."""
    encoder = msgspec.msgpack.Encoder()
    handle.write(_header_line(0, 0))
    length = crc = count = 0
    for chunk in chunks:
        if not chunk:
            continue
        frame = _frame(encoder.encode(chunk))
        handle.write(frame)
        length += len(frame)
        crc = zlib.crc32(frame, crc)
        count += len(chunk)
    frame = _frame(encoder.encode(msgspec.structs.replace(header, customers=count)))
    handle.write(frame)
    length += len(frame)
    crc = zlib.crc32(frame, crc)
    handle.seek(0)
    handle.write(_header_line(length, crc))
    handle.seek(0, os.SEEK_END)


def decode_state_file(
    data: bytes, path: str | os.PathLike[str]
) -> tuple[StateFileHeader, list[StoredCustomer]]:
    """The header and customers of a state file's bytes; :class:`StateFileError` naming ``path``."""
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
    body = memoryview(data)[end + 1 :]
    if len(body) != length or zlib.crc32(body) != crc:
        raise StateFileError(
            f"{path}: damaged state file ({len(body)} of {length} bytes, checksum "
            f"{'ok' if zlib.crc32(body) == crc else 'wrong'}); restore a copy or move it away"
        )
    try:
        frames = list(_frames(body))
        header = _HEADER.decode(frames[-1]) if frames else None
        if header is None:
            raise ValueError("no header frame")
        customers = [c for frame in frames[:-1] for c in _CHUNK.decode(frame)]
        if len(customers) != header.customers:
            raise ValueError(f"{len(customers)} customers, the header says {header.customers}")
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise StateFileError(f"{path}: unreadable state file: {exc}") from None
    return header, customers


def _frames(body: memoryview) -> Iterable[memoryview]:
    at = 0
    while at < len(body):
        if at + _FRAME.size > len(body):
            raise ValueError("a frame is cut short")
        (size,) = _FRAME.unpack_from(body, at)
        at += _FRAME.size
        if at + size > len(body):
            raise ValueError("a frame is cut short")
        yield body[at : at + size]
        at += size


def _write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
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
        self._saved_sections: dict[str, bytes] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.writes = 0

    def add_section(
        self, name: str, dump: Callable[[], bytes], load: Callable[[bytes], None]
    ) -> None:
        """Persist another component's state with the store's: ``dump()`` is called on the event
        loop every round (a dump that differs from the last one written makes the round write,
        like a change of the store), ``load(data)`` once by :meth:`load` when the file has the
        section (``ValueError`` from it: the file is refused). Register before :meth:`load`.
        The server registers the embedded fleet's policy versions and operator pauses
        (``governance``)."""
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
        # Millions of objects are created and all survive: the garbage collector would scan
        # them again and again for nothing (4x the time at 20,000 customers). The load runs
        # once, before the server serves.
        collecting = gc.isenabled()
        gc.disable()
        try:
            header, customers = decode_state_file(data, self.path)
            self.store.restore_state(customers)
            del customers
        finally:
            if collecting:
                gc.enable()
        for name, blob in header.sections.items():
            section = self._sections.get(name)
            if section is None:
                self._kept[name] = blob
                _log.warning(
                    "state file %s: section %r is not used by this server", self.path, name
                )
                continue
            try:
                section[1](blob)
            except (ValueError, KeyError, TypeError) as exc:
                raise StateFileError(
                    f"{self.path}: state file section {name!r} is unreadable: {exc}"
                ) from None
        self._saved_changes = self.store.changes
        self._saved_sections = {**self._kept, **{n: s[0]() for n, s in self._sections.items()}}
        return True

    async def save(self, *, force: bool = False) -> bool:
        """Write the file now if anything changed since the last write (or ``force``); ``True``
        when written. :class:`StateFileError` when it cannot be written."""
        async with self._lock:
            changes = self.store.changes
            sections = {**self._kept, **{n: s[0]() for n, s in self._sections.items()}}
            unchanged = changes == self._saved_changes and sections == self._saved_sections
            if unchanged and not force and self.path.exists():
                return False
            write = asyncio.ensure_future(asyncio.to_thread(self._write, sections))
            try:
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError:
                    # The thread cannot be stopped: keep the lock until it is done, so that no
                    # other write (the last one, at shutdown) shares its temporary file.
                    await write
                    raise
            except OSError as exc:
                raise StateFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
            self._saved_changes = changes
            self._saved_sections = sections
            self.writes += 1
            return True

    def _write(self, sections: dict[str, bytes]) -> None:
        """In a worker thread: copy the store a chunk at a time, encode each, write atomically."""
        header = StateFileHeader(written_ms=_now_ms(), sections=sections)
        chunks = self.store.dump_chunks(chunk=_CHUNK_CUSTOMERS)
        _write_atomically(self.path, lambda handle: write_state_file(handle, header, chunks))

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
