"""The use case that ticks off the production-path checklist."""

from __future__ import annotations

from bot.ports import Actor
from bot.services.unit import Outcome, ServiceBase, retried
from storage import repo
from storage.models import PathItem


class PathChanges(ServiceBase):
    @retried
    def set_path(self, actor: Actor, slug: str, item: str, state: str, note: str | None) -> Outcome:
        with self.change(actor, slug, "path") as uow:
            row = repo.path_item(uow.session, uow.pilot_id, item)
            uow.track(row, "state", "note", item=item)
            row = row or PathItem(pilot_id=uow.pilot_id, item=item, updated_at=uow.now)
            row.state, row.updated_at = state, uow.now
            if note is not None:
                row.note = note
            uow.save(row)
        return Outcome(f"`{slug}` {item}: {state}.", pilot=uow.pilot)
