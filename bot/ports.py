"""Who acts and where messages go: the neutral types every surface translates into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.replies import Reply


@dataclass(frozen=True)
class Actor:
    platform: str  # "slack" | "teams" | "console" | "api"
    user_id: str
    display_name: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def label(self) -> str:
        return self.display_name or self.user_id


@dataclass(frozen=True)
class Destination:
    """A user (DM) or a channel on one platform."""

    platform: str
    id: str
    name: str | None = None
    is_channel: bool = False


class Notifier(Protocol):
    """Outbound messages; implemented by each chat adapter, used by the scheduler."""

    platform: str

    async def send_dm(self, user: Destination, reply: Reply) -> dict[str, str]: ...

    async def send_channel(self, channel: Destination, reply: Reply) -> dict[str, str]: ...
