"""gateway.work.while_connected: work for a client that went away is cancelled; work
for a client that stays is not."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from gateway.work import while_connected


@pytest.fixture
async def server(aiohttp_server):
    events = {"cancelled": asyncio.Event(), "finished": asyncio.Event()}

    async def work(seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            events["cancelled"].set()
            raise
        events["finished"].set()
        return "done"

    async def handler(request: web.Request) -> web.Response:
        seconds = float(request.query["seconds"])
        return web.Response(text=await while_connected(request, work(seconds)))

    app = web.Application()
    app.router.add_get("/work", handler)
    return await aiohttp_server(app), events


async def test_work_of_a_client_that_leaves_is_cancelled(server):
    srv, events = server
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            async with session.get(
                srv.make_url("/work?seconds=30"), timeout=aiohttp.ClientTimeout(total=0.3)
            ):
                pass
    await asyncio.wait_for(events["cancelled"].wait(), timeout=5)
    assert not events["finished"].is_set()


async def test_work_of_a_client_that_waits_completes(server):
    srv, events = server
    async with aiohttp.ClientSession() as session:
        async with session.get(srv.make_url("/work?seconds=0.5")) as resp:
            assert await resp.text() == "done"
    assert events["finished"].is_set() and not events["cancelled"].is_set()
