"""Statuses of exchanges, on both databases (SQLite and PostgreSQL): the edXML order of the
statuses, who may post which code, recalls and the answers to them, concurrent posts; and
the status table on its own.

The world of agencies (the ``world`` fixture) is in tests/fixtures/exchange_world.py.
"""

from __future__ import annotations

import asyncio

import pytest

from exchange.exchanges import ExchangeError, ForbiddenError, InvalidTransition
from exchange.models import Role, StatusEvent
from exchange.statuses import FINAL, POSTED_BY, TRANSITIONS, Party, StatusCode, replay

# -- statuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps, refused",
    [
        ([], "03"),  # registered before it arrived
        ([], "02"),
        (["01"], "01"),
        (["01"], "04"),
        (["01", "02"], "03"),  # rejected is final
        (["01", "03"], "06"),
        (["01", "03", "04"], "04"),
        (["01", "03", "05", "06"], "05"),  # completed is final
        ([], "15"),  # nothing to agree to
        (["01"], "16"),
    ],
)
async def test_status_order_is_enforced(world, steps, refused):
    w = world
    result = await w.send()
    for code in steps:
        await w.service.change_status(result.id, w.b, code, None)
    before = await w.count(StatusEvent, StatusEvent.exchange_id == result.id)
    with pytest.raises(InvalidTransition) as err:
        await w.service.change_status(result.id, w.b, refused, None)
    assert (err.value.status, err.value.code, err.value.field) == (
        409,
        "invalid_transition",
        "code",
    )
    assert await w.count(StatusEvent, StatusEvent.exchange_id == result.id) == before


async def test_status_codes_belong_to_their_party(world):
    w = world
    result = await w.send()
    with pytest.raises(ForbiddenError):
        await w.service.change_status(result.id, w.a, "01", None)  # the sender
    with pytest.raises(ForbiddenError):
        await w.service.change_status(result.id, w.b, "13", None)  # a recipient
    with pytest.raises(ExchangeError) as err:
        await w.service.change_status(result.id, w.b, "07", None)
    assert (err.value.code, err.value.status, err.value.field) == ("invalid_status", 422, "code")
    with pytest.raises(ExchangeError) as err:
        await w.service.change_status(result.id, w.b, "01", "x" * 2001)
    assert err.value.field == "note"


async def test_recall_and_the_answers_to_it(world):
    w = world
    result = await w.send()
    for code in ("01", "03"):
        await w.service.change_status(result.id, w.b, code, None)
    for code in ("01", "02"):
        await w.service.change_status(result.id, w.c, code, None)

    recall = await w.service.change_status(result.id, w.a, "13", "sent by mistake")
    assert recall["recipients"] == [{"agency": w.b, "status": "13"}]  # C had rejected it
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.b, "05", None)  # answer the recall first
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.c, "15", None)

    refused = await w.service.change_status(result.id, w.b, "16", "already registered")
    assert refused["recipients"] == [{"agency": w.b, "status": "03"}]  # back where it was
    await w.service.change_status(result.id, w.b, "05", None)

    await w.service.change_status(result.id, w.a, "13", "please")
    agreed = await w.service.change_status(result.id, w.b, "15", None)
    assert agreed["recipients"] == [{"agency": w.b, "status": "15"}]
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.b, "06", None)
    with pytest.raises(InvalidTransition):
        await w.service.change_status(result.id, w.a, "13", None)  # everyone has finished

    detail = await w.service.get(result.id, w.a, Role.AGENCY)
    history = {r["agency"]: [h["code"] for h in r["history"]] for r in detail["recipients"]}
    assert history == {w.b: ["01", "03", "13", "16", "05", "13", "15"], w.c: ["01", "02"]}
    recalled = [x for x in w.enqueued if x[2].get("code") == "13"]
    assert [code for code, _, _ in recalled] == [w.b, w.b]  # C has no webhook; B told twice


async def test_a_recall_before_arrival_can_be_refused_back_to_nothing(world):
    w = world
    result = await w.send()
    moved = await w.service.change_status(result.id, w.a, "13", None)
    assert {r["agency"] for r in moved["recipients"]} == {w.b, w.c}
    await w.service.change_status(result.id, w.b, "16", None)
    await w.service.change_status(result.id, w.b, "01", None)
    page = await w.service.inbox(w.b)
    assert page.items[0]["status"] == "01"


# -- concurrency ------------------------------------------------------------------------


async def test_concurrent_posts_of_one_status_apply_once(world):
    w = world
    result = await w.send()
    outcomes = await asyncio.gather(
        *(w.service.change_status(result.id, w.b, "01", None) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert all(isinstance(o, dict | InvalidTransition) for o in outcomes), outcomes
    assert await w.count(StatusEvent, StatusEvent.exchange_id == result.id) == 1


# -- the status table -------------------------------------------------------------------


def test_the_status_table():
    assert all(not TRANSITIONS[code] for code in FINAL)
    assert POSTED_BY[StatusCode.RECALL_REQUESTED] is Party.SENDER
    assert {c for c, p in POSTED_BY.items() if p is Party.RECIPIENT} == set(StatusCode) - {
        StatusCode.RECALL_REQUESTED
    }
    for current, following in TRANSITIONS.items():
        recallable = current not in FINAL and current is not StatusCode.RECALL_REQUESTED
        assert (StatusCode.RECALL_REQUESTED in following) == recallable
    S = StatusCode
    track = replay([S.ARRIVED, S.REGISTERED, S.RECALL_REQUESTED, S.RECALL_REFUSED, S.IN_PROGRESS])
    assert (track.status, track.before_recall) == (S.IN_PROGRESS, S.REGISTERED)
    with pytest.raises(ValueError):
        replay([S.REGISTERED])
