"""gateway.body: large bodies spool to a file (and leave none behind when the upload
fails), a sender that stalls gets 408, and large bodies pass a bounded gate."""

from __future__ import annotations

import asyncio
import io

import pytest
from aiohttp import web

from gateway.body import Spooling, read_upload
from gateway.problems import problem_middleware

MIB = 1024 * 1024


@pytest.fixture
async def server(aiohttp_server, tmp_path):
    seen: dict = {"holders": 0, "most": 0, "entered": 0}

    class CountingGate(asyncio.Semaphore):
        async def __aenter__(self):
            await super().__aenter__()
            seen["holders"] += 1
            seen["entered"] += 1
            seen["most"] = max(seen["most"], seen["holders"])

        async def __aexit__(self, *exc):
            seen["holders"] -= 1
            return await super().__aexit__(*exc)

    spooling = Spooling(tmp_path / "spool", over=MIB, gate=CountingGate(2), idle_timeout=0.5)

    async def handler(request: web.Request) -> web.Response:
        upload = await read_upload(request, 8 * MIB, spooling=spooling)
        spooled = upload.path is not None and upload.path.exists()
        size = upload.path.stat().st_size if spooled else len(upload.data)
        await upload.release()
        return web.json_response({"spooled": spooled, "size": size})

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/up", handler)
    return await aiohttp_server(app), spooling, seen


async def test_small_bodies_stay_in_memory_large_ones_spool(server, aiohttp_client):
    srv, spooling, _ = server
    async with aiohttp_client_session(srv) as post:
        small = await post(b"%PDF-" + b"x" * 1000)
        assert small == {"spooled": False, "size": 1005}
        large = await post(b"%PDF-" + b"x" * (3 * MIB))
        assert large == {"spooled": True, "size": 3 * MIB + 5}
    assert list(spooling.folder.iterdir()) == []  # discarded after use


async def test_a_stalled_sender_gets_408_and_leaves_no_file(server):
    srv, spooling, _ = server
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    writer.write(
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\n"
        b"Content-Length: 4000000\r\n\r\n" + b"%PDF-" + b"x" * (2 * MIB)
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)  # then nothing more
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code": "request_timeout"' in answer
    await asyncio.sleep(0.1)
    assert list(spooling.folder.iterdir()) == []


async def test_large_bodies_are_read_at_most_gate_at_a_time(server):
    srv, _, seen = server
    async with aiohttp_client_session(srv) as post:
        answers = await asyncio.gather(*(post(b"%PDF-" + b"y" * (2 * MIB)) for _ in range(6)))
    assert all(a["spooled"] for a in answers)
    assert seen["entered"] == 6 and 1 <= seen["most"] <= 2


class aiohttp_client_session:  # noqa: N801 - used like a function
    """``post(body) -> json`` against the test server, in one client session."""

    def __init__(self, srv) -> None:
        self._srv = srv

    async def __aenter__(self):
        import aiohttp

        self._session = aiohttp.ClientSession()

        async def post(body: bytes) -> dict:
            async with self._session.post(
                self._srv.make_url("/up"),
                data=io.BytesIO(body),
                headers={"Content-Type": "application/pdf"},
            ) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

        return post

    async def __aexit__(self, *exc) -> None:
        await self._session.close()
