"""The checks of a round's unmasking, and of an abort. Pure.

The unmask request is the one privacy-critical step the coordinator takes: revealing both a
node's self-mask seed and its mask key would expose its input. So the request must name as
survivors exactly the nodes whose masked inputs are logged, as dropped exactly the nodes that
shared keys but sent no input, never one node in both lists, and enough of them; and every
response must answer that request with exactly the shares it asked for.
"""

from __future__ import annotations

from auditor.leaves import Leaf
from auditor.model import require
from auditor.rounds import RoundView, distinct, message, names, short
from scfed import shamir, wire
from scfed.errors import RemoteProtocolError, VerificationError
from scfed.secagg.graph import round_graph
from scfed.wire.messages import Announce, MaskedInput, UnmaskRequest, UnmaskResponse

Responses = list[tuple[str, UnmaskResponse]]


def check_single_request(view: RoundView) -> str:
    requests = distinct(view.of(wire.UNMASK_REQUEST))
    if len(requests) > 1:
        where = ", ".join(str(leaf.index) for leaf in requests)
        raise VerificationError(f"{len(requests)} different unmask requests (leaves {where})")
    return f"one unmask request, at leaf {requests[0].index}"


def check_disjoint(request: UnmaskRequest) -> str:
    both = sorted(set(request.survivors) & set(request.dropped))
    if both:
        raise VerificationError(
            f"listed as both survivor and dropped, which would unmask their inputs: {names(both)}"
        )
    return "no node is both survivor and dropped"


def check_survivors(view: RoundView, request: UnmaskRequest) -> str:
    """The survivors are exactly the nodes whose masked inputs are logged."""
    sent = set(view.nodes[wire.MASKED_INPUT])
    listed = set(request.survivors)
    problems = [f"{m} is a survivor but logged no masked input" for m in sorted(listed - sent)]
    problems += [f"{m} logged a masked input but is not a survivor" for m in sorted(sent - listed)]
    return require(problems, f"the {len(listed)} survivors are those who sent masked inputs")


def check_dropped(view: RoundView, request: UnmaskRequest) -> str:
    """The dropped are exactly the nodes that shared keys and sent no masked input."""
    shared = set(view.nodes[wire.SHARE_KEYS])
    expected = shared - set(view.nodes[wire.MASKED_INPUT])
    listed = set(request.dropped)
    problems = [
        f"{m} is listed as dropped but "
        + ("never shared keys" if m not in shared else "logged its masked input")
        for m in sorted(listed - expected)
    ]
    problems += [
        f"{m} shared keys and sent no input, but is not listed as dropped"
        for m in sorted(expected - listed)
    ]
    return require(problems, f"the {len(listed)} dropped are those who shared keys only")


def check_quorum(announce: Announce, request: UnmaskRequest, request_leaf: Leaf) -> str:
    """|S| >= max(t, n_min), counting only distinct registered candidates."""
    quorum = announce.quorum
    registry = request_leaf.registry
    counted = {
        s for s in request.survivors if s in announce.candidates and registry.member(s) is not None
    }
    if len(counted) < quorum:
        raise VerificationError(
            f"{len(counted)} registered candidates among {len(request.survivors)} survivors, "
            f"max(t, n_min) = {quorum} are needed"
        )
    return f"{len(counted)} registered survivors, at least max(t, n_min) = {quorum}"


def response_problem(view: RoundView, leaf: Leaf, request: UnmaskRequest) -> str | None:
    """Why a response does not answer the round's unmask request as it must, or None."""
    response = message(leaf, UnmaskResponse)
    request_leaf, announce = view.request_leaf, view.announce
    if request_leaf is None or announce is None:
        return "answers, but no unmask request is logged"
    if response.request_hash != request_leaf.digest:
        return f"answers request {short(response.request_hash)}, not {short(request_leaf.digest)}"
    if leaf.signer not in request.survivors or leaf.signer not in announce.candidates:
        return "answers, but is not a surviving candidate"
    return _reveal_problem(response, request, held_by(view, announce, leaf.signer))


def held_by(view: RoundView, announce: Announce, node: str) -> frozenset[str]:
    """Whose shares ``node`` holds: itself and its neighbours that shared keys (every node
    that shared keys on the complete graph, where a request naming another is refused)."""
    if not announce.sparse:
        return frozenset(announce.candidates)
    neighbourhood = round_graph(announce)[node] | {node}
    return frozenset(set(view.nodes[wire.SHARE_KEYS]) & neighbourhood)


def _reveal_problem(
    response: UnmaskResponse, request: UnmaskRequest, held: frozenset[str]
) -> str | None:
    """Why a response does not reveal exactly the requested shares it holds, or None."""
    if [o for o, _ in response.seed_shares] != [v for v in request.survivors if v in held]:
        return "does not reveal exactly the survivors' seed shares"
    if [o for o, _ in response.key_shares] != [v for v in request.dropped if v in held]:
        return "does not reveal exactly the dropped nodes' mask-key shares"
    try:
        for _, share in response.seed_shares + response.key_shares:
            shamir.decode_share(share)
    except RemoteProtocolError as exc:
        return str(exc)
    return None


def check_responses(view: RoundView, request: UnmaskRequest) -> str:
    """Every response answers this request's hash and reveals exactly the requested shares."""
    problems = []
    for leaf in view.of(wire.UNMASK_RESPONSE):
        problem = response_problem(view, leaf, request)
        if problem is not None:
            problems.append(f"leaf {leaf.index}: {leaf.signer} {problem}")
    count = len(view.of(wire.UNMASK_RESPONSE))
    return require(problems, f"{count} responses reveal exactly the requested shares")


def valid_responses(view: RoundView, request: UnmaskRequest) -> Responses:
    """Each responder's first valid response, in sorted sender order (the coordinator's)."""
    answered: dict[str, UnmaskResponse] = {}
    for leaf in view.of(wire.UNMASK_RESPONSE):
        if leaf.signer not in answered and response_problem(view, leaf, request) is None:
            answered[leaf.signer] = message(leaf, UnmaskResponse)
    return sorted(answered.items())


def check_no_double_input(view: RoundView, announce: Announce, request: UnmaskRequest) -> str:
    """Each survivor's one masked input, of the round's size, is aggregated once."""
    problems: list[str] = []
    owners: dict[bytes, str] = {}
    inputs = [leaf for leaf in view.of(wire.MASKED_INPUT) if leaf.signer in request.survivors]
    for survivor in request.survivors:
        count = len(distinct([leaf for leaf in inputs if leaf.signer == survivor]))
        if count > 1:
            problems.append(f"{survivor} logged {count} different masked inputs")
    for leaf in distinct(inputs):
        vector = message(leaf, MaskedInput).vector
        if len(vector) != 8 * announce.dim:
            problems.append(f"{leaf.signer}'s masked input has {len(vector) // 8} cells")
        elif owners.setdefault(vector, leaf.signer) != leaf.signer:
            problems.append(f"{leaf.signer} logged the same masked vector as {owners[vector]}")
    return require(problems, f"{len(request.survivors)} masked inputs, each counted once")


def check_abort(view: RoundView) -> str:
    """An abort unmasked nothing, unless the unmask request was logged before the responses."""
    responses = view.of(wire.UNMASK_RESPONSE)
    request = view.request_leaf
    revealed = names(sorted({leaf.signer for leaf in responses}))
    if request is None:
        if responses:
            raise VerificationError(f"shares were revealed with no unmask request: {revealed}")
        return "aborted before any unmask request: nothing was unmasked"
    early = sorted({leaf.signer for leaf in responses if leaf.index < request.index})
    if early:
        raise VerificationError(
            f"shares were revealed before the unmask request (leaf {request.index}): {names(early)}"
        )
    if not responses:
        return f"aborted after the unmask request (leaf {request.index}); nothing was revealed"
    return f"aborted after the unmask request (leaf {request.index}); shares from {revealed}"
