"""The verifier against the published attacks on PDF signatures (USF, ISA, SWA, shadow
attacks, Evil Annotation, Sneaky Signature, tampered validation data), built from
documents signed with the development PKI by tests/fixtures/attacks/, and against
the updates a signature permits (later signatures, document timestamps, validation
data, form filling allowed by DocMDP), which must keep the document valid.

A failing case here is a finding about the verifier: do not weaken the expectation."""

from __future__ import annotations

import json

import pytest

from signing.errors import SigningError
from tests.fixtures.attacks import CATALOGUE, PERMITTED, Attack, Kit, Permitted


@pytest.fixture(scope="module")
def kit(sign_doc, dev_pki):
    k = Kit(sign_doc, dev_pki)
    yield k
    k.close()


def _show(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1, default=str)


@pytest.mark.parametrize("attack", CATALOGUE, ids=lambda a: a.name)
def test_attack_is_not_valid(attack: Attack, kit: Kit, verify_doc):
    data = attack.build(kit)
    try:
        report = verify_doc(data)
    except SigningError as exc:
        if exc.code in attack.refusal:
            return  # refused as no readable PDF: not valid either
        raise
    assert report["valid"] is False, (
        f"{attack.name} ({attack.paper}) reported valid:\n{_show(report)}"
    )
    problems = attack.check(report)
    assert not problems, f"{attack.name} ({attack.paper}): {'; '.join(problems)}\n{_show(report)}"


@pytest.mark.parametrize("update", PERMITTED, ids=lambda p: p.name)
def test_permitted_update_stays_valid(update: Permitted, kit: Kit, verify_doc):
    report = verify_doc(update.build(kit))
    sigs = report["signatures"]
    assert report["valid"] is True, f"{update.name} reported not valid:\n{_show(report)}"
    not_passed = [s["field"] for s in sigs if s["indication"] != "TOTAL_PASSED"]
    assert not not_passed, f"{update.name}: not TOTAL_PASSED: {not_passed}\n{_show(report)}"
    missing = set(update.fields) - {s["field"] for s in sigs}
    assert not missing, f"{update.name}: signatures missing from the report: {missing}"
    assert len(sigs) >= len(update.fields)
