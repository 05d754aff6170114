"""The console surface: the same grammar as Slack and Teams, mentions written `@name`."""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from bot.ports import Actor
from bot.replies import render_text
from bot.router import Router

PROMPT = "pilot> "


def console_actor(name: str | None) -> Actor:
    user = (name or getpass.getuser() or "user").lstrip("@")
    return Actor("console", user, user)


def run_once(router: Router, text: str, actor: Actor, out: TextIO = sys.stdout) -> int:
    reply = router.handle(text, actor)
    print(render_text(reply), file=out)
    return 0 if reply.ok else 1


def run_interactive(router: Router, actor: Actor, inp: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    interactive = inp.isatty()
    if interactive:
        print(f"pilotbot console — you are @{actor.user_id}. `help` lists commands, `quit` leaves.", file=out)
    while True:
        if interactive:
            try:
                line = input(PROMPT)
            except (EOFError, KeyboardInterrupt):
                print(file=out)
                return 0
        else:
            raw = inp.readline()
            if not raw:
                return 0
            line = raw
        line = line.strip()
        if not line:
            continue
        if line.lower() in ("quit", "exit", ":q"):
            return 0
        print(render_text(router.handle(line, actor)), file=out)
