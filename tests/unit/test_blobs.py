"""The blob store's conformance suite, run against every ``BlobStore``: the filesystem
store and a dictionary store defined here (which shows the suite depends only on the
interface plus a small per-implementation harness)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.blobs import (
    BlobCorrupted,
    BlobMissing,
    BlobRef,
    BlobStore,
    FileBlobStore,
    InvalidBlobId,
    validate_sha256,
)


class MemoryBlobStore(BlobStore):
    """The smallest conforming store: a dictionary, counting its writes."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.writes = 0

    async def put(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        if ref.sha256 not in self.blobs:
            self.blobs[ref.sha256] = bytes(data)
            self.writes += 1
        return ref

    async def get(self, sha256: str) -> bytes:
        data = self.blobs.get(validate_sha256(sha256))
        if data is None:
            raise BlobMissing(sha256)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise BlobCorrupted(sha256, actual)
        return data

    async def exists(self, sha256: str) -> bool:
        return validate_sha256(sha256) in self.blobs

    async def put_file(self, source: Path) -> BlobRef:
        data = source.read_bytes()
        source.unlink()
        return await self.put(data)

    async def get_file(self, sha256: str) -> Path:
        data = await self.get(sha256)
        path = Path(tempfile.mkdtemp(prefix="memory-blob-")) / sha256
        path.write_bytes(data)
        return path


@dataclass
class Harness:
    store: BlobStore
    corrupt: Callable[[str], None]  # change one stored byte behind the store's back
    stamp: Callable[[str], Hashable]  # changes whenever the blob is written again


def _file_harness(root: Path) -> Harness:
    store = FileBlobStore(root)

    def corrupt(sha: str) -> None:
        path = root / sha[:2] / sha
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    def stamp(sha: str) -> Hashable:
        st_ = (root / sha[:2] / sha).stat()
        return st_.st_ino, st_.st_mtime_ns, st_.st_ctime_ns

    return Harness(store, corrupt, stamp)


def _memory_harness(_root: Path) -> Harness:
    store = MemoryBlobStore()

    def corrupt(sha: str) -> None:
        data = bytearray(store.blobs[sha])
        data[len(data) // 2] ^= 0x01
        store.blobs[sha] = bytes(data)

    return Harness(store, corrupt, lambda sha: (store.writes, id(store.blobs[sha])))


FACTORIES = {"file": _file_harness, "memory": _memory_harness}


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def make_harness(request) -> Callable[[Path], Harness]:
    return FACTORIES[request.param]


@pytest.fixture
def harness(make_harness, tmp_path) -> Harness:
    return make_harness(tmp_path / "blobs")


DOC = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
DOC_SHA = hashlib.sha256(DOC).hexdigest()
BAD_IDS = [
    "",
    "ab",
    DOC_SHA.upper(),
    DOC_SHA[:63],
    DOC_SHA + "0",
    "../" + DOC_SHA[3:],
    "..",
    "/etc/passwd",
    "g" * 64,
    DOC_SHA[:62] + "/.",
    " " + DOC_SHA[1:],
    DOC_SHA[:63] + "\n",
]


async def test_round_trip(harness):
    ref = await harness.store.put(DOC)
    assert ref == BlobRef(DOC_SHA, len(DOC))
    assert await harness.store.exists(DOC_SHA)
    assert await harness.store.get(DOC_SHA) == DOC


async def test_empty_blob_round_trips(harness):
    ref = await harness.store.put(b"")
    assert ref == BlobRef(hashlib.sha256(b"").hexdigest(), 0)
    assert await harness.store.get(ref.sha256) == b""


async def test_second_put_of_equal_bytes_writes_nothing(harness):
    first = await harness.store.put(DOC)
    before = harness.stamp(DOC_SHA)
    again = await harness.store.put(bytes(DOC))
    assert again == first
    assert harness.stamp(DOC_SHA) == before
    assert await harness.store.get(DOC_SHA) == DOC


async def test_changed_byte_is_detected_on_get(harness):
    await harness.store.put(DOC)
    harness.corrupt(DOC_SHA)
    with pytest.raises(BlobCorrupted) as exc:
        await harness.store.get(DOC_SHA)
    assert exc.value.sha256 == DOC_SHA and exc.value.actual != DOC_SHA


async def test_missing_blob(harness):
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not await harness.store.exists(sha)
    with pytest.raises(BlobMissing) as exc:
        await harness.store.get(sha)
    assert exc.value.sha256 == sha


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_malformed_ids_are_refused(harness, bad):
    await harness.store.put(DOC)
    with pytest.raises(InvalidBlobId):
        await harness.store.get(bad)
    with pytest.raises(InvalidBlobId):
        await harness.store.exists(bad)


async def test_concurrent_puts_of_the_same_bytes(harness):
    refs = await asyncio.gather(*(harness.store.put(DOC) for _ in range(16)))
    assert set(refs) == {BlobRef(DOC_SHA, len(DOC))}
    assert await harness.store.get(DOC_SHA) == DOC


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=4096))
def test_any_bytes_round_trip(make_harness, data):
    with tempfile.TemporaryDirectory() as tmp:
        store = make_harness(Path(tmp) / "blobs").store

        async def run() -> None:
            ref = await store.put(data)
            assert ref == BlobRef(hashlib.sha256(data).hexdigest(), len(data))
            assert await store.get(ref.sha256) == data

        asyncio.run(run())


# Filesystem specifics: the layout others (records.py, backups) rely on, no leftovers.


async def test_file_layout_and_no_temporary_files_left(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    await asyncio.gather(*(store.put(DOC) for _ in range(8)))
    files = sorted(p.relative_to(tmp_path / "blobs") for p in (tmp_path / "blobs").rglob("*"))
    assert files == [Path(DOC_SHA[:2]), Path(DOC_SHA[:2]) / DOC_SHA]


async def test_file_store_rewrites_a_truncated_blob(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    await store.put(DOC)
    path = store.path_of(DOC_SHA)
    path.write_bytes(DOC[:10])  # e.g. restored from a broken backup
    with pytest.raises(BlobCorrupted):
        await store.get(DOC_SHA)
    await store.put(DOC)
    assert await store.get(DOC_SHA) == DOC


async def test_file_store_does_not_block_the_loop(tmp_path, monkeypatch):
    calls: list[str] = []
    real = asyncio.to_thread

    async def spy(func, *args, **kwargs):
        calls.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    store = FileBlobStore(tmp_path / "blobs")
    await store.put(DOC)
    await store.get(DOC_SHA)
    await store.exists(DOC_SHA)
    assert calls == ["put_sync", "get_sync", "is_file"]
    assert os.listdir(tmp_path / "blobs") == [DOC_SHA[:2]]


async def test_files_go_in_by_moving_and_come_out_checked(harness, tmp_path):
    source = tmp_path / "upload.pdf"
    source.write_bytes(DOC)
    ref = await harness.store.put_file(source)
    assert ref == BlobRef(DOC_SHA, len(DOC))
    assert not source.exists()  # consumed, not copied
    assert await harness.store.get(DOC_SHA) == DOC
    path = await harness.store.get_file(DOC_SHA)
    assert path.read_bytes() == DOC
    again = tmp_path / "again.pdf"  # the same bytes again: stored once
    again.write_bytes(DOC)
    assert await harness.store.put_file(again) == ref and not again.exists()
    harness.corrupt(DOC_SHA)
    with pytest.raises(BlobCorrupted):
        await harness.store.get_file(DOC_SHA)
    with pytest.raises(BlobMissing):
        await harness.store.get_file("0" * 64)
