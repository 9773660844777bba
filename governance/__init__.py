"""Enrolment, on both sides: governance's folder and each party's own folder. Edge code.

``governance.federation`` is governance's offline folder: its signing key and the federation
CA, the enrolment of each party's request and the removal of members and operators, each a
new signed registry version. ``governance.catalogue`` reads the query catalogue file and signs
it as the next policy. ``governance.party`` makes a party's own folder (its keys, its
configuration and its enrolment request) and new keys to rotate to; ``governance.install``
checks what governance issued before it is put in place, and checks a folder as its daemon
would. ``governance.local`` runs all of it for every party on one machine, for the demo and
the tests. The ``scfed federation``, ``node``, ``operator`` and ``coordinator`` commands call
these modules; all of them read and write files.
"""
