"""Corporate groups: members of one group count as one firm. Pure: no I/O.

Two fabs of one group must not make a cell look like two competitors, nor let a round pass
its n_min with one firm's sites, nor hide that one group could pool its members' noise. The
registry names each member's group; every count here is conservative, so a group is never
counted as more than one firm and its members' noise never counts as independent of each
other when one group colludes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from scfed.wire.messages import Registry


@dataclass(frozen=True)
class Groups:
    """The corporate groups of a set of members (a round's candidates or survivors)."""

    sizes: tuple[tuple[str, int], ...]  # (group, members of it in the set), largest first

    @property
    def firms(self) -> int:
        """How many firms the set holds: one per group."""
        return len(self.sizes)

    @property
    def largest(self) -> int:
        return self.sizes[0][1] if self.sizes else 0

    def colluders(self, t_collude: int) -> int:
        """Members of the t_collude largest groups: whose noise a coalition may know."""
        return sum(size for _, size in self.sizes[:t_collude])

    def size(self, group: str) -> int:
        return dict(self.sizes).get(group, 0)


def groups(registry: Registry, members: Iterable[str]) -> Groups:
    """The groups of ``members`` by the registry; an unregistered member is its own group."""
    group = registry.group_of_member
    counts = Counter([g if (g := group.get(m)) is not None else f"member:{m}" for m in members])
    return Groups(tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))))


def group_of(registry: Registry, member_id: str) -> str:
    return _group(registry, member_id)


def _group(registry: Registry, member_id: str) -> str:
    member = registry.member(member_id)
    return member.corporate_group if member is not None else f"member:{member_id}"
