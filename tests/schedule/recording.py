"""An in-memory Notifier for pure scheduling tests: records every message with the clock time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.clock import Clock
from bot.ports import Destination
from bot.replies import Reply, render_text


@dataclass
class Sent:
    platform: str
    dest: str
    is_channel: bool
    at: datetime
    reply: Reply

    @property
    def text(self) -> str:
        return render_text(self.reply)


@dataclass
class RecordingNotifier:
    platform: str
    clock: Clock
    sent: list[Sent] = field(default_factory=list)
    fail_next: int = 0  # raise on the next n sends
    fail_channels: bool = False

    async def _send(self, dest: Destination, reply: Reply) -> dict[str, str]:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RuntimeError("platform said no")
        if dest.is_channel and self.fail_channels:
            raise RuntimeError("channel_not_found")
        self.sent.append(Sent(self.platform, dest.id, dest.is_channel, self.clock.now(), reply))
        return {"channel": dest.id, "ts": str(len(self.sent))}

    async def send_dm(self, user: Destination, reply: Reply) -> dict[str, str]:
        return await self._send(user, reply)

    async def send_channel(self, channel: Destination, reply: Reply) -> dict[str, str]:
        return await self._send(Destination(channel.platform, channel.id, channel.name, True), reply)
