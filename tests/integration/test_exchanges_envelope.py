"""The envelope parser of exchanges on its own, without a database: valid envelopes,
errors that name the field, paper envelopes, and random envelopes with Hypothesis.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.exchanges import EnvelopeError, ExchangeError, parse_envelope
from tests.fixtures.exchange_world import raw_envelope

# -- the envelope, without a database ---------------------------------------------------


A, B, C = "000.00.00.H41", "000.00.01.H41", "000.00.02.H41"


def test_a_valid_envelope_parses_and_round_trips():
    envelope = parse_envelope(raw_envelope(A, [B, C]))
    assert envelope.sender == A and envelope.recipients == (B, C)
    assert envelope.document.promulgated_at == dt.date(2026, 11, 2)
    assert envelope.level.value == "B-LT" and envelope.registrant == A
    assert parse_envelope(json.loads(json.dumps(envelope.to_json()))) == envelope
    minimal = {k: v for k, v in raw_envelope(A, [B]).items() if k not in ("sign", "level")}
    minimal["document"] = {"subject": "x"}
    parsed = parse_envelope(minimal)
    assert parsed.sign is False and parsed.level.value == "B-LT"
    assert parsed.document.due_date is None and parsed.document.secret is False


def _doc(**changes) -> dict:
    doc = raw_envelope(A, [B])["document"]
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"document": _doc(subject="x" * 501)}, "document.subject"),
        ({"document": _doc(subject="   ")}, "document.subject"),
        ({"document": _doc(subject=None)}, "document.subject"),
        ({"document": _doc(subject="a\x00b")}, "document.subject"),
        ({"document": _doc(number="1" * 51)}, "document.number"),
        ({"document": _doc(promulgated_at="2026-02-30")}, "document.promulgated_at"),
        ({"document": _doc(due_date="20261120")}, "document.due_date"),
        ({"document": _doc(secret="no")}, "document.secret"),
        ({"document": _doc(author="me")}, "document.author"),
        ({"document": "subject"}, "document"),
        ({"to": [B, "000.00.01.h41"]}, "to[1]"),
        ({"to": [B, "000.00.02.H41\n"]}, "to[1]"),
        ({"to": [B, C, B]}, "to[2]"),
        ({"to": [B, A]}, "to[1]"),
        ({"to": []}, "to"),
        ({"to": B}, "to"),
        ({"from": "H41"}, "from"),
        ({"channel": "fax"}, "channel"),
        ({"direction": "incoming"}, "direction"),
        ({"sign": 1}, "sign"),
        ({"level": "B-X"}, "level"),
        ({"exchanged_at": "2026-11-02T09:30:00+07:00"}, "exchanged_at"),
        ({"channel": "paper", "sign": True}, "sign"),
        ({"channel": "paper", "sign": False, "exchanged_at": "2026-11-02T09:30"}, "exchanged_at"),
        ({"channel": "paper", "sign": False, "exchanged_at": "2026-11-02"}, "exchanged_at"),
        ({"channel": "paper", "sign": False, "direction": "incoming", "to": [B, C]}, "to"),
        ({"urgent": True}, "urgent"),
    ],
)
def test_envelope_errors_name_the_field(changes, field):
    raw = raw_envelope(A, [B])
    raw.update(changes)
    with pytest.raises(EnvelopeError) as err:
        parse_envelope(raw)
    assert (err.value.field, err.value.code, err.value.status) == (field, "invalid_envelope", 422)


def test_paper_envelopes():
    incoming = parse_envelope(
        raw_envelope(A, [B], channel="paper", direction="incoming", sign=False,
                     exchanged_at="2026-11-02T09:30:00+07:00")
    )  # fmt: skip
    assert incoming.registrant == B
    assert incoming.exchanged_at.utcoffset() == dt.timedelta(hours=7)
    with pytest.raises(EnvelopeError) as err:
        parse_envelope([])
    assert err.value.field == "envelope"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_codes = st.sampled_from([A, B, C, "000.00.00.h41", "", "999.99.99.Z99"]) | st.text(max_size=14)
_dates = st.sampled_from(["2026-11-02", "2026-02-29", "0000-01-01", "2026-1-2"]) | _json
_times = (
    st.sampled_from(
        ["2026-11-02T09:30:00+07:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
    )
    | st.datetimes(timezones=st.none() | st.timezones()).map(lambda t: t.isoformat())
    | _json
)
_document = st.fixed_dictionaries(
    {},
    optional={
        "number": _json,
        "notation": st.text(max_size=120),
        "type": _json,
        "subject": st.text(max_size=600) | _json,
        "promulgated_at": _dates,
        "due_date": _dates,
        "secret": _json,
        "extra": _json,
    },
)
_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "from": _codes,
        "to": st.lists(_codes, max_size=4) | _json,
        "channel": st.sampled_from(["electronic", "paper", "Paper"]) | _json,
        "direction": st.sampled_from(["outgoing", "incoming"]) | _json,
        "document": _document | _json,
        "sign": st.booleans() | _json,
        "level": st.sampled_from(["B-B", "B-T", "B-LT", "B-LTA", "b-lt"]) | _json,
        "exchanged_at": _times,
        "unknown": _json,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_envelopes, _json))
def test_random_envelopes_raise_only_exchange_errors(raw):
    try:
        envelope = parse_envelope(raw)
    except ExchangeError as err:
        assert err.code == "invalid_envelope" and err.status == 422 and err.field
        return
    assert parse_envelope(envelope.to_json()) == envelope


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "from": st.just(A),
            "to": st.lists(st.sampled_from([B, C]), min_size=1, max_size=2, unique=True),
            "channel": st.sampled_from(["electronic", "paper"]),
            "direction": st.just("outgoing"),
            "document": st.fixed_dictionaries({"subject": st.text(min_size=1, max_size=500)}),
        }
    )
)
def test_near_valid_envelopes_parse_or_name_the_subject(raw):
    try:
        envelope = parse_envelope(raw)
    except EnvelopeError as err:
        assert err.field == "document.subject"
        return
    assert envelope.document.subject == raw["document"]["subject"]
