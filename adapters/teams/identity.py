"""One identity per Teams person: the Entra object id (aadObjectId), learnt even when it came late.

The rule, on write and on compare: a person is their aadObjectId whenever Teams has told us
one, and their `29:` id only until then. Writes (a mention) resolve the `29:` id through the
mention entity, our stored references or the roster (app.py); the actor of an activity is
`from.aadObjectId` (inbound.actor_of). When none of the lookups knew the object id, the owner is
stored by the `29:` id; the first activity from that person carries both ids, and `AliasLearner`
re-keys what was stored under the `29:` id (owner, creator) to the object id before the command
runs, so the person's own check-in answers and changes are theirs.
"""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy import Engine, update
from sqlmodel import col, select

from storage.db import session_scope
from storage.models import Pilot

PLATFORM = "teams"


class AliasLearner:
    """Re-keys `29:` ids to the object id, once per id and process (a bounded memory of ids done)."""

    def __init__(self, engine: Engine, size: int = 10_000) -> None:
        self.engine = engine
        self.size = size
        self._done: OrderedDict[str, None] = OrderedDict()

    def learn(self, channel_id: str | None, aad_object_id: str | None) -> int:
        """Pilots re-keyed from `channel_id` to `aad_object_id` (0 when nothing was stored by it)."""
        if not channel_id or not aad_object_id or channel_id == aad_object_id or channel_id in self._done:
            return 0
        old_ref, new_ref = f"{PLATFORM}:{channel_id}", f"{PLATFORM}:{aad_object_id}"
        changed = 0
        with session_scope(self.engine) as s:
            owned = (col(Pilot.owner_platform) == PLATFORM) & (col(Pilot.owner_id) == channel_id)
            if s.exec(select(Pilot.id).where(owned | (col(Pilot.created_by) == old_ref))).first() is not None:
                changed += s.exec(update(Pilot).where(owned).values(owner_id=aad_object_id)).rowcount  # type: ignore[call-overload]
                s.exec(update(Pilot).where(col(Pilot.created_by) == old_ref).values(created_by=new_ref))  # type: ignore[call-overload]
                s.commit()
        self._done[channel_id] = None
        while len(self._done) > self.size:
            self._done.popitem(last=False)
        return changed
