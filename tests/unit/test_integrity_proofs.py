"""The leaf encoding, signed checkpoints and proof documents of the tamper-evident log (openims.integrity):
checkpoints fail for any changed field or another key, proof documents verify offline and fail for an edited
event, a malformed document is an answer and not an exception, and the auditor's snippet in docs/integrity.md
checks a real proof with nothing of OpenIMS."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from openims.integrity import checkpoint, merkle, proofs
from openims.integrity.canonical import canonical_event

DOCS = Path(__file__).parents[2] / "docs" / "integrity.md"
ACCOUNT = "1234567890123456"
KEY = checkpoint.new_key()
PUBLIC = KEY.public_key()
OTHER_KEY = checkpoint.new_key()


def event(i: int) -> dict[str, Any]:
    return {
        "eventId": f"ev-{i}",
        "eventName": "CreateUser",
        "eventTime": "2026-12-03T11:00:00Z",
        "recipientAccountId": ACCOUNT,
        "requestParameters": {"UserPrincipalName": f"zoë{i}@example.com", "DisplayName": "Zoë 李"},
        "userIdentity": {"type": "ram-user", "principalId": "2000000001"},
        "isGlobal": True,
        "eventVersion": 1,
        "errorCode": None,
    }


EVENTS = [event(i) for i in range(13)]
LEAVES = [merkle.leaf_hash(canonical_event(e)) for e in EVENTS]


def signed(size: int, previous: bytes = checkpoint.FIRST_PREVIOUS, key: Any = KEY, leaves: list[bytes] = LEAVES) -> Any:
    cp = checkpoint.Checkpoint(
        ACCOUNT, size, merkle.root(leaves[:size]), 1796292000000 + size, checkpoint.key_id(key.public_key()), previous
    )
    return checkpoint.sign(cp, key)


# --- the leaf -------------------------------------------------------------------------------------------------


def test_the_canonical_encoding() -> None:
    data = {"b": 1, "a": {"z": [1, "é", None, True], "y": "李"}, "c": 'x\ny"z\\'}
    assert canonical_event(data) == '{"a":{"y":"李","z":[1,"é",null,true]},"b":1,"c":"x\\ny\\"z\\\\"}'.encode()
    # The documented expression, byte for byte, and the same whatever order the keys came in.
    for e in EVENTS:
        assert canonical_event(e) == json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert canonical_event(OrderedDict(reversed(list(e.items())))) == canonical_event(e)
        assert json.loads(canonical_event(e)) == e
    assert "ë".encode() in canonical_event(EVENTS[0])
    # The escapes docs/integrity.md lists, for an auditor writing this in another language.
    escaped = canonical_event({"s": '\x01\x7f\u2028/"\\\b\f\n\r\t'})
    assert escaped == b'{"s":"\\u0001\x7f\xe2\x80\xa8/\\"\\\\\\b\\f\\n\\r\\t"}'


def test_a_lone_surrogate_is_escaped_not_an_error() -> None:
    odd = {"eventId": "x", "requestParameters": {"Name": "a\udc80b"}}
    encoded = canonical_event(odd)
    assert encoded == b'{"eventId":"x","requestParameters":{"Name":"a\\udc80b"}}'
    assert json.loads(encoded) == odd


# --- checkpoints ----------------------------------------------------------------------------------------------


def test_the_checkpoint_body_is_the_documented_text() -> None:
    cp = checkpoint.Checkpoint(ACCOUNT, 5, b"\x01" * 32, 1796292000000, "56475aa75463474c", bytes(32))
    assert checkpoint.body(cp) == (
        b"openims-log/v1\n1234567890123456\n5\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n1796292000000\n"
        b"56475aa75463474c\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    )


def test_checkpoints_sign_verify_and_chain() -> None:
    first = signed(5)
    assert len(first.signature) == 64
    assert checkpoint.verify(first, PUBLIC)
    assert not checkpoint.verify(first, OTHER_KEY.public_key())
    assert checkpoint.digest(first) == hashlib.sha256(checkpoint.body(first) + first.signature).digest()
    second = signed(9, checkpoint.digest(first))
    assert checkpoint.verify(second, PUBLIC) and second.previous == checkpoint.digest(first)
    assert checkpoint.digest(second) != checkpoint.digest(first)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_id", "1234567890123457"),
        ("size", 6),
        ("root", merkle.root(LEAVES[:6])),
        ("time_ms", 1796292000006),
        ("key_id", checkpoint.key_id(OTHER_KEY.public_key())),
        ("previous", b"\x01" * 32),
        ("signature", bytes(64)),
    ],
    # Named by field: some values are random keys, and every xdist worker must collect the same test IDs.
    ids=["account_id", "size", "root", "time_ms", "key_id", "previous", "signature"],
)
def test_a_changed_checkpoint_field_fails(field: str, value: Any) -> None:
    cp = signed(5)
    assert checkpoint.verify(cp, PUBLIC)
    forged = dataclasses.replace(cp, **{field: value})
    assert not checkpoint.verify(forged, PUBLIC)
    assert checkpoint.digest(forged) != checkpoint.digest(cp)
    # Every single bit of the signature matters.
    flipped = bytearray(cp.signature)
    flipped[len(flipped) // 2] ^= 1
    assert not checkpoint.verify(dataclasses.replace(cp, signature=bytes(flipped)), PUBLIC)


def test_checkpoints_through_json() -> None:
    cp = signed(7)
    data = json.loads(json.dumps(checkpoint.to_json(cp)))
    assert data["origin"] == "openims-log/v1" and data["treeSize"] == 7 and data["accountId"] == ACCOUNT
    assert checkpoint.from_json(data) == cp


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "other-log/v1"},
        {"treeSize": "7"},
        {"treeSize": 7.0},
        {"treeSize": True},
        {"treeSize": -1},
        {"timeMs": None},
        {"accountId": 1234567890123456},
        {"accountId": "12345\n5"},
        {"accountId": ""},
        {"keyId": "a b"},
        {"rootHash": "not base64!"},
        {"rootHash": base64.b64encode(bytes(31)).decode()},
        {"previous": base64.b64encode(bytes(33)).decode()},
        {"signature": 64},
    ],
)
def test_a_malformed_checkpoint_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(checkpoint.MalformedCheckpoint):
        checkpoint.from_json({**checkpoint.to_json(signed(7)), **change})


def test_a_malformed_checkpoint_is_neither_signed_nor_verified() -> None:
    good = signed(3)
    for forged in (
        dataclasses.replace(good, account_id="1\n2"),
        dataclasses.replace(good, size=-3),
        dataclasses.replace(good, root=good.root[:31]),
        dataclasses.replace(good, signature=good.signature[:63]),
    ):
        assert not checkpoint.verify(forged, PUBLIC)
        checkpoint.digest(forged)  # what the verifier chains with: never an exception
    for field, value in (("account_id", "1\n2"), ("key_id", ""), ("size", -3), ("time_ms", True), ("root", b"")):
        with pytest.raises(ValueError, match=field):
            checkpoint.sign(dataclasses.replace(good, **{field: value}), KEY)
    with pytest.raises(checkpoint.MalformedCheckpoint):
        checkpoint.from_json(["not", "an", "object"])


def test_keys_ids_and_pem() -> None:
    raw = PUBLIC.public_bytes_raw()
    assert checkpoint.key_id(PUBLIC) == hashlib.sha256(raw).hexdigest()[:16]
    assert checkpoint.key_id(PUBLIC) != checkpoint.key_id(OTHER_KEY.public_key())
    pem = checkpoint.public_pem(PUBLIC)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert checkpoint.load_public_pem(pem).public_bytes_raw() == raw
    listing = f"# key one\n{pem}# key two\n{checkpoint.public_pem(OTHER_KEY.public_key())}"
    assert [checkpoint.key_id(k) for k in checkpoint.load_public_pems(listing)] == [
        checkpoint.key_id(PUBLIC),
        checkpoint.key_id(OTHER_KEY.public_key()),
    ]
    with pytest.raises(ValueError):
        checkpoint.load_public_pem("no key here")
    with pytest.raises(ValueError):
        checkpoint.load_public_pem(pem[:-30])
    ec_pem = checkpoint.public_pem(ec.generate_private_key(ec.SECP256R1()).public_key())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        checkpoint.load_public_pem(ec_pem)


# --- proof documents ------------------------------------------------------------------------------------------


def inclusion(index: int, size: int = 13) -> dict[str, Any]:
    doc = proofs.inclusion_document(EVENTS[index], index, merkle.inclusion_proof(index, LEAVES[:size]), signed(size))
    return json.loads(json.dumps(doc))  # what a file holds


def test_every_inclusion_document_verifies_offline() -> None:
    for size in range(1, 14):
        for index in range(size):
            doc = inclusion(index, size)
            assert doc["format"] == "openims-inclusion-proof/v1"
            assert (doc["leafIndex"], doc["treeSize"]) == (index, size)
            ok, why = proofs.verify_document(doc, [PUBLIC])
            assert ok, why
            assert f"event ev-{index} is at position {index}" in why and "\n" not in why


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("requestParameters", "UserPrincipalName"), "mallory@example.com"),
        (("eventName",), "DeleteUser"),
        (("errorCode",), "NoPermission"),
        (("isGlobal",), False),
        (("eventVersion",), 2),
        (("userIdentity", "principalId"), "2000000002"),
        (("eventId",), "ev-5"),
    ],
)
def test_an_edited_event_fails(path: tuple[str, ...], value: Any) -> None:
    doc = inclusion(4)
    target = doc["event"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    ok, why = proofs.verify_document(doc, [PUBLIC])
    assert not ok and "is not at position 4" in why, why


def test_an_added_or_removed_event_field_fails() -> None:
    doc = inclusion(4)
    doc["event"]["extra"] = ""
    assert not proofs.verify_document(doc, [PUBLIC])[0]
    doc = inclusion(4)
    del doc["event"]["errorCode"]
    assert not proofs.verify_document(doc, [PUBLIC])[0]


def test_an_inclusion_document_fails_for_anything_changed() -> None:
    def changed(edit: Any) -> tuple[bool, str]:
        doc = inclusion(6)
        edit(doc)
        return proofs.verify_document(doc, [PUBLIC])

    assert proofs.verify_document(inclusion(6), [PUBLIC])[0]
    assert not changed(lambda d: d.update(leafIndex=7))[0]
    assert not changed(lambda d: d.update(leafIndex=13))[0]
    assert not changed(lambda d: d["auditPath"].reverse())[0]
    assert not changed(lambda d: d["auditPath"].pop())[0]
    assert not changed(lambda d: d["auditPath"].append(d["checkpoint"]["rootHash"]))[0]
    # Another event of the log, with this one's path.
    assert not changed(lambda d: d.update(event=EVENTS[7]))[0]
    # A checkpoint edited to fit an edited event no longer carries a valid signature.
    ok, why = changed(lambda d: d["checkpoint"].update(rootHash=base64.b64encode(bytes(32)).decode()))
    assert not ok and "signature" in why
    ok, why = changed(lambda d: d["checkpoint"].update(treeSize=14) or d.update(treeSize=14))
    assert not ok and "signature" in why
    # The event of another account cannot borrow this account's log.
    ok, why = changed(lambda d: d["event"].update(recipientAccountId="9999999999999999"))
    assert not ok and "account" in why


def test_the_key_must_be_given_and_match() -> None:
    doc = inclusion(2)
    ok, why = proofs.verify_document(doc, [OTHER_KEY.public_key()])
    assert not ok and "not among the keys given" in why
    assert not proofs.verify_document(doc, [])[0]
    # After a rotation the auditor passes every key: the one the checkpoint names is used.
    assert proofs.verify_document(doc, [OTHER_KEY.public_key(), PUBLIC])[0]
    # A checkpoint that claims to be signed by the other key, but was not.
    doc["checkpoint"]["keyId"] = checkpoint.key_id(OTHER_KEY.public_key())
    ok, why = proofs.verify_document(doc, [OTHER_KEY.public_key(), PUBLIC])
    assert not ok and "does not verify" in why


def test_a_log_re_signed_with_another_key_fails() -> None:
    forged_leaves = [*LEAVES]
    edited = {**EVENTS[3], "eventName": "DeleteUser"}
    forged_leaves[3] = merkle.leaf_hash(canonical_event(edited))
    cp = signed(13, key=OTHER_KEY, leaves=forged_leaves)
    doc = proofs.inclusion_document(edited, 3, merkle.inclusion_proof(3, forged_leaves), cp)
    assert proofs.verify_document(doc, [OTHER_KEY.public_key()])[0]  # consistent in itself...
    assert not proofs.verify_document(doc, [PUBLIC])[0]  # ...but not signed by the key the auditor holds


def test_every_consistency_document_verifies_offline() -> None:
    for n in range(1, 14):
        for m in range(1, n + 1):
            doc = json.loads(
                json.dumps(proofs.consistency_document(signed(m), signed(n), merkle.consistency_proof(m, LEAVES[:n])))
            )
            assert doc["format"] == "openims-consistency-proof/v1"
            ok, why = proofs.verify_document(doc, [PUBLIC])
            assert ok, why
            assert f"at size {n} extends its log at size {m}" in why


def test_a_rewritten_history_fails_the_consistency_proof() -> None:
    rewritten = [*LEAVES]
    rewritten[2] = merkle.leaf_hash(canonical_event({**EVENTS[2], "eventName": "GetUser"}))
    old, new = signed(5), signed(13, leaves=rewritten)  # the operator re-signs a rewritten log with the real key
    proof = merkle.consistency_proof(5, rewritten)
    ok, why = proofs.verify_document(proofs.consistency_document(old, new, proof), [PUBLIC])
    assert not ok and "does not extend" in why
    good = proofs.consistency_document(old, signed(13), merkle.consistency_proof(5, LEAVES))
    assert proofs.verify_document(good, [PUBLIC])[0]
    swapped = {**good, "from": good["to"], "to": good["from"]}
    assert not proofs.verify_document(swapped, [PUBLIC])[0]
    assert not proofs.verify_document({**good, "proof": []}, [PUBLIC])[0]
    assert not proofs.verify_document({**good, "proof": good["proof"][1:]}, [PUBLIC])[0]
    other_account = checkpoint.sign(dataclasses.replace(signed(13), account_id="9999999999999999"), KEY)
    ok, why = proofs.verify_document({**good, "to": checkpoint.to_json(other_account)}, [PUBLIC])
    assert not ok and "different accounts" in why
    forged = {**good, "to": {**good["to"], "rootHash": base64.b64encode(bytes(32)).decode()}}
    assert not proofs.verify_document(forged, [PUBLIC])[0]


def _malformed() -> list[Any]:
    good = inclusion(3)
    docs: list[Any] = [None, [], "text", 3, {}, {"format": "nonsense"}, {"format": ["x"]}]
    for key in good:
        docs.append({k: v for k, v in good.items() if k != key})
    for key, value in (
        ("leafIndex", "3"),
        ("leafIndex", 3.0),
        ("leafIndex", True),
        ("leafIndex", -1),
        ("treeSize", 12),
        ("event", "text"),
        ("event", None),
        ("auditPath", "abc"),
        ("auditPath", [1, 2]),
        ("auditPath", ["***"]),
        ("auditPath", [base64.b64encode(bytes(31)).decode()]),
        ("checkpoint", None),
        ("checkpoint", {}),
        ("checkpoint", {**good["checkpoint"], "signature": "%%%"}),
    ):
        docs.append({**good, key: value})
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    docs.append({**good, "event": {**good["event"], "deep": deep}})
    consistency = proofs.consistency_document(signed(3), signed(8), merkle.consistency_proof(3, LEAVES[:8]))
    docs += [
        {**consistency, "from": None},
        {**consistency, "to": "x"},
        {**consistency, "proof": None},
        {**consistency, "proof": ["not base64"]},
    ]
    return docs


def test_a_malformed_document_is_an_answer_not_an_exception() -> None:
    for doc in _malformed():
        ok, why = proofs.verify_document(copy.copy(doc), [PUBLIC])
        assert not ok and why and "\n" not in why and len(why) < 400, why


# --- the auditor's snippet in docs/integrity.md ---------------------------------------------------------------


def _snippet() -> str:
    section = DOCS.read_text().split("### How an auditor verifies with nothing but the public key", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_documented_snippet_checks_a_proof_without_openims(tmp_path: Path) -> None:
    code = _snippet()
    assert "openims" not in code.replace("openims-log/v1", "")
    assert len(code.strip().splitlines()) <= 20
    # As `openims integrity public-key` prints it: a comment line, then the PEM.
    (tmp_path / "pub.pem").write_text(f"# key {checkpoint.key_id(PUBLIC)}: current\n{checkpoint.public_pem(PUBLIC)}")

    def run(doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        (tmp_path / "proof.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        command = [sys.executable, "-I", "-c", code]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)

    for index in (0, 5, 12):
        ok = run(inclusion(index))
        assert ok.returncode == 0 and ok.stdout.startswith(f"valid: ev-{index} is at position {index}"), ok.stderr
    edited = inclusion(5)
    edited["event"]["eventName"] = "DeleteUser"
    bad = run(edited)
    assert bad.returncode != 0 and "not in the signed log" in bad.stderr
    forged = inclusion(5)
    forged["checkpoint"]["timeMs"] += 1
    bad = run(forged)
    assert bad.returncode != 0 and "InvalidSignature" in bad.stderr
    assert run(inclusion(5, size=6)).returncode == 0
    beyond = inclusion(5, size=6)
    beyond["leafIndex"] = 6
    assert run(beyond).returncode != 0
