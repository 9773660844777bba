"""The auditor on real logs of in-memory rounds: an honest log passes, every attack is named.

Each attack is what a malicious coordinator (or a node) can do with the keys it holds; the
test asserts the named finding that catches it, with the culprit in its reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor import audit, text, to_json
from auditor.fetch import fetch_log
from auditor.shares import blame
from protos.scfed.v1 import service_pb2 as spb
from protos.scfed.v1.service_pb2_grpc import LogServiceStub
from scfed import note, pki, shamir, tlog, wire
from scfed.checkpoint import Checkpoint
from scfed.cli import main
from scfed.dp.ledger import Budget, parse_rho, rho_text
from scfed.errors import RemoteProtocolError
from scfed.wire import envelope as env
from scfed.wire.codec import (
    decode_abort,
    decode_advertise_keys,
    decode_announce,
    decode_charge,
    decode_result,
    decode_unmask_request,
    decode_unmask_response,
    encode,
)
from scfed.wire.envelope import Envelope
from scfed.wire.messages import (
    Abort,
    AdvertiseKeys,
    ReleaseCharge,
    Result,
    UnmaskRequest,
    UnmaskResponse,
    layout_hash,
)
from tests.unchecked import unchecked_replace
from tests.unit._audit_support import (
    Log,
    assert_caught,
    checkpoint,
    envelope,
    failed,
    find,
    forge,
    honest_log,
    resign,
    run_audit,
    shifted_sums,
    substitute,
    sybil_log,
    write_log_dir,
)
from tests.unit._support import Rng

ALL, DROPOUTS, ABORT, EVERYONE = range(4)


# ---- the honest log --------------------------------------------------------------------------


def test_honest_log_passes_every_check() -> None:
    log = honest_log()
    report = run_audit(log)
    assert failed(report) == {}
    assert report.ok
    report.check()
    outcomes = [entry.outcome for entry in report.rounds]
    assert outcomes == ["result", "result", "abort", "result"]
    assert [entry.recomputed for entry in report.rounds] == [True, True, None, True]
    dropouts = report.rounds[DROPOUTS]
    assert dropouts.survivors == ("node-000", "node-001", "node-002")
    assert dropouts.dropped == ("node-004",)
    checks = {f.check for entry in report.rounds for f in entry.findings}
    assert {"result.recomputed", "result.shares_consistent", "charge.rho"} <= checks
    assert "abort.nothing_unmasked" in checks
    assert text(report).endswith(f"audit passed: 4 rounds, {len(log.leaves)} leaves")


def test_charges_add_up_per_period() -> None:
    report = run_audit(honest_log())
    rules = [parse_rho(e.charge.rule or "") for e in report.rounds if e.charge is not None]
    assert len(rules) == 3
    assert report.spent == (("memory", rho_text(sum(rules, Fraction(0)))),)
    over = run_audit(honest_log(), budget=Budget(min(rules)))
    assert_caught(over, "budget.cap", "period memory")


# ---- log integrity ----------------------------------------------------------------------------


def test_rewritten_old_leaf_breaks_an_older_checkpoint() -> None:
    log = honest_log()
    older = checkpoint(log.fed, log.leaves, size=log.starts[EVERYONE])
    index = find(log, ABORT, wire.ABORT)
    leaves = forge(log, index, lambda e: replace(_abort(e), reason="rewritten"))
    report = run_audit(log, leaves, older=(older,))
    assert set(failed(report)) == {"log.consistency"}
    assert_caught(report, "log.consistency", "older checkpoint 1", "rewritten")
    assert run_audit(log, older=(older,)).ok


def test_fork_same_size_different_root() -> None:
    log = honest_log()
    index = find(log, ABORT, wire.ABORT)
    other = forge(log, index, lambda e: replace(_abort(e), reason="the other branch"))
    report = run_audit(log, older=(checkpoint(log.fed, other),))
    assert_caught(report, "log.consistency", "forked")


def test_checkpoint_must_match_leaves_and_key() -> None:
    log = honest_log()
    report = audit(
        log.leaves[:-1],
        checkpoint=checkpoint(log.fed, log.leaves),
        governance_key=log.governance_key,
        origin=log.origin,
    )
    assert_caught(report, "log.checkpoint", "size")
    stranger = note_signed_by(log, Ed25519PrivateKey.from_private_bytes(Rng(b"x")(32)))
    report = audit(
        log.leaves, checkpoint=stranger, governance_key=log.governance_key, origin=log.origin
    )
    assert_caught(report, "log.checkpoint", "trusted key")


def note_signed_by(log: Log, key: Ed25519PrivateKey) -> bytes:
    root = tlog.root_hash([tlog.leaf_hash(leaf) for leaf in log.leaves])
    text_ = Checkpoint(log.origin, len(log.leaves), root).format()
    return note.sign_note(text_, [note.Signer(log.origin, key)])


def test_first_leaf_must_be_the_registry_and_versions_increase() -> None:
    log = honest_log()
    report = run_audit(log, log.leaves[1:])
    assert_caught(report, "log.first_registry", "first leaf")
    replayed = [*log.leaves[: log.starts[DROPOUTS]], log.leaves[0], *log.leaves[log.starts[1] :]]
    assert_caught(run_audit(log, replayed), "log.registry_versions", "version 1 follows")


def test_undecodable_leaf_is_reported_and_the_rest_still_audited() -> None:
    log = honest_log()
    leaves = [*log.leaves, b"\xff not an envelope"]
    report = run_audit(log, leaves)
    assert_caught(report, "log.decode", f"leaf {len(log.leaves)}")
    assert all(entry.ok for entry in report.rounds)


# ---- membership and signatures ----------------------------------------------------------------


def test_substituted_round_key_is_caught() -> None:
    log = honest_log()
    index = find(log, ALL, wire.ADVERTISE_KEYS, "node-002")
    honest = decode_advertise_keys(envelope(log.leaves[index]).body)
    fake = AdvertiseKeys(honest.round_id, honest.announce_hash, Rng(b"c")(32), Rng(b"s")(32))
    impostor = Ed25519PrivateKey.from_private_bytes(Rng(b"impostor")(32))
    sealed = env.seal(impostor, wire.ADVERTISE_KEYS, "node-002", log.origin, encode(fake))
    leaves = list(log.leaves)
    leaves[index] = sealed.to_bytes()
    report = run_audit(log, leaves)
    assert_caught(report, "log.signatures", f"leaf {index}", "node-002's registered identity key")


def test_unregistered_participant_is_caught() -> None:
    log = sybil_log()
    report = run_audit(log)
    assert_caught(report, "round.candidates_registered", "node-999")
    assert_caught(report, "log.signatures", "node-999 is not a member")


# ---- split view and unmasking -----------------------------------------------------------------


def test_split_view_two_announces_for_one_round() -> None:
    log = honest_log()
    first = find(log, ALL, wire.ANNOUNCE)
    announce = decode_announce(envelope(log.leaves[first]).body)
    other = replace(announce, phase_timeout_ms=announce.phase_timeout_ms + 1)
    second = Envelope.from_bytes(resign(log.fed, wire.ANNOUNCE, wire.COORDINATOR, other))
    leaves = list(log.leaves)
    for member in ("node-003", "node-004"):
        index = find(log, ALL, wire.ADVERTISE_KEYS, member)
        keys = decode_advertise_keys(envelope(leaves[index]).body)
        moved = replace(keys, announce_hash=second.digest(log.origin))
        leaves[index] = resign(log.fed, wire.ADVERTISE_KEYS, member, moved)
    leaves.insert(first + 1, second.to_bytes())
    report = run_audit(log, leaves)
    assert_caught(report, "round.single_announce", "split view", "node-003, node-004")
    assert_caught(report, "round.announce_hash", "node-003")


def _repeating_a_cell(log: Log, number: int) -> Envelope:
    """Round ``number``'s announce with its second cell listed again in place of its third,
    under a layout hash that matches: only the repeat is wrong."""
    announce = decode_announce(envelope(log.leaves[find(log, number, wire.ANNOUNCE)]).body)
    cells = (announce.cells[0], announce.cells[1], announce.cells[1], *announce.cells[3:])
    bad = unchecked_replace(announce, cells=cells, layout_hash=layout_hash(cells))
    return Envelope.from_bytes(resign(log.fed, wire.ANNOUNCE, wire.COORDINATOR, bad))


def test_an_announce_listing_a_cell_twice_fails_and_names_its_leaf() -> None:
    log = honest_log()
    index = find(log, ALL, wire.ANNOUNCE)
    bad = _repeating_a_cell(log, ALL)
    leaves = list(log.leaves)
    leaves[index] = bad.to_bytes()
    for member in ("node-003", "node-004"):  # these nodes (say) took part in the bad round
        advert = find(log, ALL, wire.ADVERTISE_KEYS, member)
        keys = decode_advertise_keys(envelope(leaves[advert]).body)
        moved = replace(keys, announce_hash=bad.digest(log.origin))
        leaves[advert] = resign(log.fed, wire.ADVERTISE_KEYS, member, moved)
    report = run_audit(log, leaves)
    assert_caught(report, "log.decode", f"leaf {index}", "an announce lists a cell twice")
    assert_caught(
        report,
        "round.single_announce",
        f"refer to the announce at leaf {index}, which does not decode",
        "lists a cell twice",
    )
    assert all(entry.ok for entry in report.rounds[1:])  # the other rounds are still audited
    assert "AUDIT FAILED" in text(report)


def test_a_second_announce_listing_a_cell_twice_is_named_where_it_is_referred_to() -> None:
    log = honest_log()
    first = find(log, ALL, wire.ANNOUNCE)
    bad = _repeating_a_cell(log, ALL)
    leaves = list(log.leaves)
    advert = find(log, ALL, wire.ADVERTISE_KEYS, "node-003")
    keys = decode_advertise_keys(envelope(leaves[advert]).body)
    moved = replace(keys, announce_hash=bad.digest(log.origin))
    leaves[advert] = resign(log.fed, wire.ADVERTISE_KEYS, "node-003", moved)
    leaves.insert(first + 1, bad.to_bytes())
    report = run_audit(log, leaves)
    assert_caught(report, "log.decode", f"leaf {first + 1}", "lists a cell twice")
    assert_caught(
        report,
        "round.announce_hash",
        "node-003",
        f"at leaf {first + 1}, which does not decode: an announce lists a cell twice",
    )


def test_node_both_survivor_and_dropped() -> None:
    log = honest_log()
    index = find(log, DROPOUTS, wire.UNMASK_REQUEST)

    def both(sealed: Envelope) -> UnmaskRequest:
        request = decode_unmask_request(sealed.body)
        return replace(request, dropped=tuple(sorted((*request.dropped, "node-001"))))

    report = run_audit(log, forge(log, index, both))
    assert_caught(report, "unmask.disjoint", "node-001")
    assert_caught(report, "unmask.dropped", "node-001 is listed as dropped")


def test_non_candidate_survivor_and_response_are_reported_not_crashed_on() -> None:
    log = honest_log()
    index = find(log, ALL, wire.UNMASK_REQUEST)

    def outsider(sealed: Envelope) -> UnmaskRequest:
        request = decode_unmask_request(sealed.body)
        return replace(request, survivors=(*request.survivors, "node-005"))

    leaves = forge(log, index, outsider)
    request = Envelope.from_bytes(leaves[index])
    honest = decode_unmask_response(envelope(log.leaves[index + 1]).body)
    seeds = (*honest.seed_shares, ("node-005", honest.seed_shares[0][1]))
    answer = replace(honest, request_hash=request.digest(log.origin), seed_shares=seeds)
    leaves.insert(index + 1, resign(log.fed, wire.UNMASK_RESPONSE, "node-005", answer))
    report = run_audit(log, leaves)
    assert_caught(report, "unmask.survivors", "node-005 is a survivor but logged no masked input")
    assert_caught(report, "unmask.responses", "node-005 answers, but is not a surviving candidate")
    assert_caught(report, "round.signers", "node-005, who is not a candidate")


def test_request_below_quorum_is_caught() -> None:
    log = honest_log()
    index = find(log, ALL, wire.UNMASK_REQUEST)

    def few(sealed: Envelope) -> UnmaskRequest:
        request = decode_unmask_request(sealed.body)
        return replace(request, survivors=request.survivors[:2])

    report = run_audit(log, forge(log, index, few))
    assert_caught(report, "unmask.quorum", "max(t, n_min) = 3")
    assert_caught(report, "unmask.survivors", "not a survivor")


# ---- results and charges ----------------------------------------------------------------------


def test_wrong_result_is_caught() -> None:
    log = honest_log()
    index = find(log, ALL, wire.RESULT)
    leaves = forge(log, index, lambda e: replace(_result(e), sums=shifted_sums(_result(e).sums)))
    report = run_audit(log, leaves)
    assert_caught(report, "result.recomputed", "cell 0")
    assert report.rounds[ALL].recomputed is False
    assert "result recomputed \u2717" in text(report)


def test_undercharge_is_caught() -> None:
    log = honest_log()
    index = find(log, ALL, wire.CHARGE)

    def half(sealed: Envelope) -> ReleaseCharge:
        charge = decode_charge(sealed.body)
        return replace(charge, rho=rho_text(parse_rho(charge.rho) / 2))

    report = run_audit(log, forge(log, index, half))
    assert_caught(report, "charge.rho", "undercharged")


def test_charge_after_abort_and_missing_charge() -> None:
    log = honest_log()
    charge = log.leaves[find(log, ALL, wire.CHARGE)]
    leaves = [x for x in log.leaves if x != charge]
    assert_caught(run_audit(log, leaves), "charge.present", "0 different charges")
    aborted = find(log, ABORT, wire.ABORT)
    abort_round = decode_announce(envelope(log.leaves[find(log, ABORT, wire.ANNOUNCE)]).body)
    extra = ReleaseCharge(
        abort_round.round_id,
        envelope(log.leaves[find(log, ABORT, wire.ANNOUNCE)]).digest(log.origin),
        "memory",
        3,
        "1/2",
    )
    leaves = list(log.leaves)
    leaves.insert(aborted + 1, resign(log.fed, wire.CHARGE, wire.COORDINATOR, extra))
    assert_caught(run_audit(log, leaves), "charge.present", "aborted round")


def test_wrong_seed_share_names_the_responder() -> None:
    log = honest_log()
    index = find(log, ALL, wire.UNMASK_RESPONSE, "node-004")

    def wrong(sealed: Envelope) -> UnmaskResponse:
        response = decode_unmask_response(sealed.body)
        owner, share = response.seed_shares[1]
        bad = shamir.encode_share((shamir.decode_share(share) + 1) % shamir.PRIME)
        seeds = list(response.seed_shares)
        seeds[1] = (owner, bad)
        return replace(response, seed_shares=tuple(seeds))

    report = run_audit(log, forge(log, index, wrong))
    assert set(failed(report)) == {"result.shares_consistent"}
    assert_caught(report, "result.shares_consistent", "node-004", "node-001's seed")


def test_blame_finds_a_wrong_share_among_the_first_t() -> None:
    points, t = [1, 2, 3, 4, 5, 6], 3
    values = [(7 + 5 * x + 11 * x * x) % shamir.PRIME for x in points]
    assert blame(points, values, t) == ([], [0, 1, 2])
    values[1] += 1
    found = blame(points, values, t)
    assert found is not None
    assert found[0] == [1]
    assert blame(points[:4], values[:4], t) is None  # t + 1 responses cannot say who


def test_abort_after_unmasking_is_reported() -> None:
    log = honest_log()
    result = find(log, ALL, wire.RESULT)
    announce_leaf = envelope(log.leaves[find(log, ALL, wire.ANNOUNCE)])
    announce = decode_announce(announce_leaf.body)
    abort = Abort(announce.round_id, announce_leaf.digest(log.origin), "unmasking failed")
    leaves = list(log.leaves)
    leaves[result] = resign(log.fed, wire.ABORT, wire.COORDINATOR, abort)
    leaves.pop(find(log, ALL, wire.CHARGE))
    report = run_audit(log, leaves)
    finding = next(f for f in report.rounds[ALL].findings if f.check == "abort.nothing_unmasked")
    assert finding.passed
    assert "after the unmask request" in finding.detail
    request = find(log, ALL, wire.UNMASK_REQUEST)
    leaves.pop(request)
    assert_caught(run_audit(log, leaves), "abort.nothing_unmasked", "no unmask request")


# ---- output ----------------------------------------------------------------------------------


def test_json_report_has_every_finding() -> None:
    log = honest_log()
    index = find(log, ALL, wire.CHARGE)
    leaves = forge(log, index, lambda e: replace(decode_charge(e.body), rho="1/1000000"))
    document = json.loads(to_json(run_audit(log, leaves)))
    assert document["ok"] is False
    assert document["leaves"] == len(log.leaves)
    checks = {f["check"]: f for f in document["rounds"][ALL]["findings"]}
    assert checks["charge.rho"]["passed"] is False
    assert checks["result.recomputed"]["passed"] is True
    assert any("charge.rho" in problem for problem in document["problems"])
    assert {f["check"] for f in document["findings"]} >= {"log.checkpoint", "budget.cap"}


def test_text_report_fails_loudly() -> None:
    log = honest_log()
    index = find(log, ALL, wire.CHARGE)
    leaves = forge(log, index, lambda e: replace(decode_charge(e.body), rho="1/1000000"))
    rendered = text(run_audit(log, leaves))
    assert "\u2717 charge.rho" in rendered
    assert rendered.endswith("AUDIT FAILED: 1 problems")


# ---- the command line ------------------------------------------------------------------------


def _governance_file(tmp_path: Path, log: Log) -> Path:
    path = tmp_path / "governance.pub"
    path.write_text(pki.ed25519_public_text(log.fed.governance_key.public_key()) + "\n")
    return path


def test_cli_verify_log_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = honest_log()
    write_log_dir(tmp_path / "log", log.leaves, checkpoint(log.fed, log.leaves))
    older = tmp_path / "older.note"
    older.write_bytes(checkpoint(log.fed, log.leaves, size=log.starts[ABORT]))
    key = _governance_file(tmp_path, log)
    args = ["audit", "verify", "--log", str(tmp_path / "log"), "--governance-key", str(key)]
    args += ["--origin", log.origin, "--checkpoint", str(older)]
    assert main(args) == 0
    expected = f"audit passed: 4 rounds, {len(log.leaves)} leaves"
    assert capsys.readouterr().out.strip().endswith(expected)
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_cli_verify_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = honest_log()
    index = find(log, ALL, wire.RESULT)
    leaves = forge(log, index, lambda e: replace(_result(e), sums=shifted_sums(_result(e).sums)))
    write_log_dir(tmp_path / "log", leaves, checkpoint(log.fed, leaves))
    key = _governance_file(tmp_path, log)
    args = ["audit", "verify", "--log", str(tmp_path / "log"), "--governance-key", str(key)]
    assert main([*args, "--origin", log.origin]) == 1
    captured = capsys.readouterr()
    assert "AUDIT FAILED" in captured.out
    assert "result.recomputed" in captured.err
    assert main([*args, "--origin", log.origin, "--rho-cap", "nonsense"]) == 1


def test_cli_coordinator_needs_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit", "verify", "--coordinator", "localhost:1", "--governance-key", "k"]
    assert main([*args, "--origin", "o"]) == 1
    assert "--config" in capsys.readouterr().err


# ---- fetching --------------------------------------------------------------------------------


class FakeLogService:
    """The log service's answers, served from memory; big leaves only as blobs."""

    def __init__(self, leaves: list[bytes], note_bytes: bytes, *, corrupt: bool = False) -> None:
        self.note, self.leaves, self.corrupt = note_bytes, leaves, corrupt
        self.blobs = {hashlib.sha256(x).digest(): x for x in leaves}
        self.pages = 0

    def GetCheckpoint(self, request: spb.CheckpointRequest, timeout: float) -> spb.SignedCheckpoint:  # noqa: N802
        return spb.SignedCheckpoint(note=self.note)

    def GetEntries(self, request: spb.EntriesRequest, timeout: float) -> spb.Entries:  # noqa: N802
        self.pages += 1
        chosen = self.leaves[request.start : request.start + min(request.count, 7)]
        entries = []
        for offset, data in enumerate(chosen):
            inline = data if len(data) < 300 else b""
            digest = hashlib.sha256(data).digest()
            entries.append(
                spb.Entry(index=request.start + offset, content_hash=digest, data=inline)
            )
        return spb.Entries(entries=entries)

    def GetBlob(self, request: spb.BlobRequest, timeout: float) -> spb.Blob:  # noqa: N802
        data = self.blobs[request.content_hash]
        return spb.Blob(data=substitute(data) if self.corrupt else data)


def test_fetch_log_pages_and_blobs() -> None:
    log = honest_log()
    note_bytes = checkpoint(log.fed, log.leaves)
    service = FakeLogService(list(log.leaves), note_bytes)
    leaves, fetched_note = fetch_log(cast(LogServiceStub, service))
    assert leaves == list(log.leaves)
    assert fetched_note == note_bytes
    assert service.pages == -(-len(log.leaves) // 7)
    bad = FakeLogService(list(log.leaves), note_bytes, corrupt=True)
    with pytest.raises(RemoteProtocolError, match="content hash"):
        fetch_log(cast(LogServiceStub, bad))


# ---- helpers ---------------------------------------------------------------------------------


def _abort(sealed: Envelope) -> Abort:
    return decode_abort(sealed.body)


def _result(sealed: Envelope) -> Result:
    return decode_result(sealed.body)
