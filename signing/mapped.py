"""Documents too large to copy: a file on disk, mapped read-only.

A 100 MB scan travels as a path, not as bytes: the gateway spools the upload to a file,
the worker maps it (``MappedPdf``). The mapping is bytes-like, so hashing and the
byte-level checks (``/ByteRange`` gaps, trailing bytes) read it where it lies, and the
parser gets a real file stream (``pdf_stream``), so pyHanko reads objects, copies the
original into the output and hashes the signed byte ranges in chunks. Nothing holds the
whole document in memory; the pages of the mapping are the page cache's.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from typing import BinaryIO

__all__ = ["MappedPdf", "file_sha256", "pdf_stream"]


class MappedPdf(mmap.mmap):
    """A read-only mapping of a document file, which also hands out file streams over
    the same file and closes them when it is closed."""

    path: str
    _streams: list[BinaryIO]

    @classmethod
    def open(cls, path: str) -> MappedPdf:
        with open(path, "rb") as fh:
            mapped = cls(fh.fileno(), 0, access=mmap.ACCESS_READ)  # ValueError when empty
        mapped.path = path
        mapped._streams = []
        return mapped

    def stream(self) -> BinaryIO:
        fh = open(self.path, "rb")  # noqa: SIM115 - closed with the mapping
        self._streams.append(fh)
        return fh

    def close(self) -> None:
        for fh in getattr(self, "_streams", ()):
            fh.close()
        super().close()

    def __enter__(self) -> MappedPdf:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pdf_stream(data: bytes | MappedPdf) -> BinaryIO:
    """A seekable stream over ``data`` for the PDF parser (no copy either way: BytesIO
    shares an immutable bytes object's buffer until written to)."""
    if isinstance(data, MappedPdf):
        return data.stream()
    return io.BytesIO(data)


def file_sha256(source: str | os.PathLike | BinaryIO) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file's whole content, read in chunks: a path, or an
    open stream (read from its start)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            return file_sha256(fh)
    source.seek(0)
    digest = hashlib.file_digest(source, "sha256")
    return digest.hexdigest(), source.tell()
