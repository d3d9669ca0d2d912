"""Messages between the worker pool and its workers, read without a thread: the framing
of ``multiprocessing.connection`` parsed from what the event loop says is readable."""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

from .worker_main import describe

__all__ = ["INLINE", "Frame", "unpickle"]


def unpickle(data: bytes | bytearray) -> tuple[str, Any]:
    try:
        return pickle.loads(data)
    except Exception as exc:  # the worker is fine; its answer does not unpickle here
        return ("err", RuntimeError(f"the answer cannot be read: {describe(exc)}"))


# Messages up to this size go through the pipe from the event loop itself: into an
# empty socket buffer (the worker has read its previous task) a write this small never
# blocks, and pickling it costs microseconds. Larger ones take an I/O thread.
INLINE = 64 * 1024
_HEADER = struct.Struct("!i")  # multiprocessing.connection's framing
_LONG_HEADER = struct.Struct("!Q")


class Frame:
    """One ``multiprocessing.connection`` message, read from the (blocking) socket only
    when the event loop says it is readable and only as much as is there: never blocks,
    needs no thread."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0
        self._size: int | None = None

    def feed(self, fd: int) -> bool:
        """Read what is available; True once the message is complete. EOFError: the
        other end closed before it was."""
        want = 1 << 20 if self._size is None else self._start + self._size - len(self._buffer)
        chunk = os.read(fd, max(64 * 1024, min(want, 16 << 20)))
        if not chunk:
            raise EOFError
        self._buffer += chunk
        if self._size is None and len(self._buffer) >= 4:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size >= 0:
                self._size, self._start = size, 4
            elif len(self._buffer) >= 12:
                (self._size,) = _LONG_HEADER.unpack_from(self._buffer, 4)
                self._start = 12
        return self._size is not None and len(self._buffer) >= self._start + self._size

    @property
    def body(self) -> memoryview:
        assert self._size is not None
        return memoryview(self._buffer)[self._start : self._start + self._size]
