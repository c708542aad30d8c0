"""Where decision log records go: the ``DecisionSink`` port and the JSON Lines file sink (the embedded default).

A sink receives batches of ``(decision_id, record)`` -- the record is one
line of JSON (:func:`arbiter.policies.decision_log.encode_record`) -- from
the server's writer, off the request path, and finds a record again by its
decision id (``ExplainDecision``), and lists or erases one customer's
records (``ExportCustomer`` / ``ForgetCustomer``). :class:`JsonlSink` appends to a file and
rotates it by size (``PATH`` -> ``PATH.1``, one generation kept, so the log
is bounded at about twice ``max_bytes``); ``RedisStreamSink``
(:mod:`arbiter.state.decision_log_redis`) appends to a bounded Redis Stream.
:func:`open_sink` opens the one a destination names. Readers for
``arbiter decisions tail|export`` are :func:`read_file` and
:func:`follow_file` (and the stream sink's own).
"""

from __future__ import annotations

import asyncio
import mmap
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final, Protocol

import msgspec

__all__ = [
    "DEFAULT_FILE_MAX_BYTES",
    "DecisionSink",
    "JsonlSink",
    "customer_of",
    "customer_records_in_file",
    "find_in_file",
    "follow_file",
    "forget_in_file",
    "open_sink",
    "read_file",
]

DEFAULT_FILE_MAX_BYTES: Final = 256 * 1024 * 1024
# Batches up to this size are appended from the event loop (see JsonlSink.write).
_INLINE_WRITE_BYTES: Final = 1024 * 1024
_ID_KEY: Final = b'"decision_id":"'


class _Customer(msgspec.Struct):
    customer_id: str = ""


_CUSTOMER: Final = msgspec.json.Decoder(_Customer)


def customer_of(record: bytes) -> str:
    """The customer a record is about (its top-level ``customer_id``; ``""`` if unreadable)."""
    try:
        return _CUSTOMER.decode(record).customer_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""


class DecisionSink(Protocol):
    """Where records are written; every method may raise ``OSError`` / ``StoreUnavailable``."""

    @property
    def name(self) -> str:
        """``file`` or ``redis`` (the ``sink`` label of the decision log metrics)."""
        ...

    async def write(self, batch: Sequence[tuple[str, bytes]]) -> None:
        """Append ``(decision_id, record)`` pairs, in order; all or (on an error) an unknown part."""
        ...

    async def find(self, decision_id: str) -> bytes | None:
        """The newest record of ``decision_id``, or ``None`` when the log no longer holds one."""
        ...

    async def customer_records(self, customer_id: str) -> list[bytes]:
        """Every record the log holds about ``customer_id``, oldest first (privacy export)."""
        ...

    async def forget_customer(self, customer_id: str) -> int:
        """Delete every record about ``customer_id``; how many went (privacy erasure)."""
        ...

    async def close(self) -> None: ...


class JsonlSink:
    """Append records to ``path``, one per line; rotate to ``path.1`` past ``max_bytes``."""

    name = "file"

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_FILE_MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._lock = asyncio.Lock()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    async def write(self, batch: Sequence[tuple[str, bytes]]) -> None:
        if not batch:
            return
        data = b"".join(record + b"\n" for _, record in batch)
        async with self._lock:
            if len(data) <= _INLINE_WRITE_BYTES:
                # An append to the page cache takes microseconds; handing it to a thread
                # costs more (measured: server CPU per Decide +68 µs with the hop, +29 µs
                # without, make bench-decision-log).
                self._append(data)
            else:
                await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if os.fstat(self._fd).st_size >= self.max_bytes:
            os.close(self._fd)
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._fd = self._open()

    async def find(self, decision_id: str) -> bytes | None:
        async with self._lock:
            return await asyncio.to_thread(find_in_file, self.path, decision_id)

    async def customer_records(self, customer_id: str) -> list[bytes]:
        async with self._lock:
            return await asyncio.to_thread(customer_records_in_file, self.path, customer_id)

    async def forget_customer(self, customer_id: str) -> int:
        """Blank the customer's records in place (:func:`forget_in_file`), appends waiting."""
        async with self._lock:
            return await asyncio.to_thread(forget_in_file, self.path, customer_id)

    async def close(self) -> None:
        async with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _generations(path: Path) -> list[Path]:
    """The files of a rotated log, newest first."""
    return [p for p in (path, path.with_name(path.name + ".1")) if p.exists()]


def find_in_file(path: str | os.PathLike[str], decision_id: str) -> bytes | None:
    """The newest line of ``path`` (or its rotated ``.1``) whose record is ``decision_id``."""
    needle = _ID_KEY + decision_id.encode() + b'"'
    for file in _generations(Path(path)):
        if file.stat().st_size == 0:
            continue
        with file.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            end = len(m)
            while (hit := m.rfind(needle, 0, end)) >= 0:
                start = m.rfind(b"\n", 0, hit) + 1
                stop = m.find(b"\n", hit)
                line = bytes(m[start : stop if stop >= 0 else len(m)])
                # The record's own id is the first decision_id of its line (a Check's query
                # may name another decision later in the line).
                if line.find(_ID_KEY) == hit - start:
                    return line
                end = hit
    return None


def _customer_lines(data: bytes | mmap.mmap, customer_id: str) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of every line of ``data`` whose record is about ``customer_id``."""
    needle = b'"customer_id":"' + customer_id.encode() + b'"'
    at = 0
    while (hit := data.find(needle, at)) >= 0:
        start = data.rfind(b"\n", 0, hit) + 1
        stop = data.find(b"\n", hit)
        stop = len(data) if stop < 0 else stop
        if customer_of(bytes(data[start:stop])) == customer_id:
            yield start, stop
        at = stop + 1


def customer_records_in_file(path: str | os.PathLike[str], customer_id: str) -> list[bytes]:
    """Every record of ``customer_id`` in ``path`` and its rotated ``.1``, oldest first."""
    found: list[bytes] = []
    for file in reversed(_generations(Path(path))):
        if file.stat().st_size == 0:
            continue
        with file.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            found += [bytes(m[start:stop]) for start, stop in _customer_lines(m, customer_id)]
    return found


def forget_in_file(path: str | os.PathLike[str], customer_id: str) -> int:
    """Erase ``customer_id``'s records from ``path`` and its ``.1``; how many went.

    Each record's bytes are overwritten in place with spaces (its newline kept) and the file
    is fsync-ed: the file keeps its inode, size and every other record's offset, so a reader
    following it (``arbiter decisions tail``) carries on where it was, and readers skip blank
    lines. A crash in the middle leaves some of the records blanked and the others whole (run
    it again: it is idempotent)."""
    removed = 0
    for file in _generations(Path(path)):
        if file.stat().st_size == 0:
            continue
        with file.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            spans = list(_customer_lines(m, customer_id))
        if not spans:
            continue
        with file.open("r+b") as target:
            for start, stop in spans:
                target.seek(start)
                target.write(b" " * (stop - start))
            target.flush()
            os.fsync(target.fileno())
        removed += len(spans)
    return removed


def _holds_customer(file: Path, customer_id: str) -> bool:
    """Whether one file holds a record of ``customer_id`` (a scan, nothing decoded but hits)."""
    with file.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return next(_customer_lines(m, customer_id), None) is not None


def read_file(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Every record of a log file, oldest first (the rotated ``.1`` before the current file)."""
    for file in reversed(_generations(Path(path))):
        with file.open("rb") as handle:
            for raw in handle:
                line = raw.rstrip(b"\n")
                if line.strip():  # a blank line is a record erased in place
                    yield line


async def follow_file(
    path: str | os.PathLike[str], *, from_start: bool = False, poll_s: float = 0.2
) -> AsyncIterator[bytes]:
    """New records of ``path`` as they are written, like ``tail -F``: a rotation is followed
    (the old file is read to its end first). ``from_start``: the existing records too."""
    file = Path(path)
    handle: BinaryIO | None = None
    inode = -1
    pending = b""
    try:
        while True:
            try:
                current = file.stat().st_ino
            except FileNotFoundError:
                current = inode
            if current != inode:
                if handle is not None:  # rotated: finish the old file
                    for line in _lines(pending + handle.read()):
                        yield line
                    handle.close()
                handle = file.open("rb")
                if inode == -1 and not from_start:
                    handle.seek(0, os.SEEK_END)
                inode, pending = current, b""
            chunk = handle.read() if handle is not None else b""
            if not chunk:
                await asyncio.sleep(poll_s)
                continue
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                if line.strip():
                    yield line
    finally:
        if handle is not None:
            handle.close()


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line.strip()]


def open_sink(
    destination: str,
    *,
    redis_url: str = "",
    max_bytes: int = DEFAULT_FILE_MAX_BYTES,
    stream_maxlen: int = 0,
    retention_s: float = 0.0,
) -> DecisionSink:
    """The sink ``destination`` names: ``redis`` (the stream on ``redis_url``), a ``redis://``
    / ``rediss://`` / ``redis+cluster://`` URL (a stream there), or a file path (JSON Lines).
    ``stream_maxlen`` / ``retention_s`` of 0 keep the stream sink's defaults."""
    if destination == "redis" or destination.startswith(("redis://", "rediss://", "redis+")):
        from .decision_log_redis import RedisStreamSink

        url = redis_url if destination == "redis" else destination
        if not url:
            raise ValueError("decision log `redis` needs --redis-url (or give a redis:// URL)")
        return RedisStreamSink.from_url(url, maxlen=stream_maxlen, retention_s=retention_s)
    return JsonlSink(destination, max_bytes=max_bytes)
