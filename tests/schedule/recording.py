"""An in-memory Notifier for pure scheduling tests: records every message with the clock time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.clock import Clock
from bot.ports import Destination, MessageRef
from bot.replies import Reply, render_text


@dataclass
class Sent:
    platform: str
    dest: str
    is_channel: bool
    at: datetime
    reply: Reply
    in_reply_to: MessageRef | None = None
    conversation: str | None = None  # the DM conversation the core already knew, if any

    @property
    def text(self) -> str:
        return render_text(self.reply)


@dataclass
class RecordingNotifier:
    """Answers each message with MessageRef(platform, <conversation or destination id>, <n>)."""

    platform: str
    clock: Clock
    sent: list[Sent] = field(default_factory=list)
    fail_next: int = 0  # raise on the next n sends
    fail_channels: bool = False

    async def send(self, dest: Destination, reply: Reply, in_reply_to: MessageRef | None = None) -> MessageRef:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RuntimeError("platform said no")
        if dest.is_channel and self.fail_channels:
            raise RuntimeError("channel_not_found")
        at = self.clock.now()
        self.sent.append(Sent(self.platform, dest.id, dest.is_channel, at, reply, in_reply_to, dest.conversation))
        return MessageRef(self.platform, dest.conversation or dest.id, str(len(self.sent)))
