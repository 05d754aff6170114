"""The Teams app package: manifest.json + color.png (192x192) + outline.png (32x32, white on transparent).

Manifest schema 1.22: the version Microsoft Learn lists as current for the Teams app manifest
(https://learn.microsoft.com/microsoftteams/platform/resources/schema/manifest-schema). We use
only long-standing fields (bots, commandLists, scopes), so older clients read it the same way.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from adapters.teams.auth import GUID_RE
from bot.commands import GRAMMAR

MANIFEST_VERSION = "1.22"
MANIFEST_SCHEMA = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
SCOPES = ["personal", "team", "groupChat"]
# Teams shows at most 10 commands per list; the rest are one `help` away.
MENU_COMMANDS = ("help", "status", "new", "owner", "baseline", "measure", "threshold", "eval", "path", "checkin")
MAX_COMMANDS = 10
ACCENT = "#2B5797"
COLOR_SIZE = 192
OUTLINE_SIZE = 32
ZIP_DATE = (2026, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same bytes


class PackageError(ValueError):
    """One sentence about a bad option."""


@dataclass(frozen=True)
class PackageInfo:
    app_id: str
    version: str = "1.0.0"
    developer: str = "pilotbot"
    website: str = "https://example.com/pilotbot"
    privacy: str | None = None
    terms: str | None = None


def command_list() -> list[dict[str, str]]:
    by_name = {name: (usage, summary) for name, usage, _, summary in GRAMMAR}
    out = []
    for name in MENU_COMMANDS:
        usage, summary = by_name[name]
        out.append({"title": name, "description": f"{usage} — {summary}"[:128]})
    return out


def manifest(info: PackageInfo) -> dict[str, Any]:
    if not GUID_RE.match(info.app_id):
        raise PackageError(f"--app-id must be the bot's Microsoft App ID (a GUID), not `{info.app_id[:60]}`.")
    if not all(u.startswith("https://") for u in (info.website, info.privacy or "https://", info.terms or "https://")):
        raise PackageError("The website, privacy and terms URLs must start with https://.")
    if not re.fullmatch(r"\d+\.\d+\.\d+", info.version):
        raise PackageError(f"--version must look like 1.0.0, not `{info.version[:30]}`.")
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": info.version,
        "id": info.app_id,
        "developer": {
            "name": info.developer[:32],
            "websiteUrl": info.website,
            "privacyUrl": info.privacy or info.website.rstrip("/") + "/privacy",
            "termsOfUseUrl": info.terms or info.website.rstrip("/") + "/terms",
        },
        "name": {"short": "pilotbot", "full": "pilotbot: ship AI pilots"},
        "description": {
            "short": "Baseline, owner, quality bar and production path for every AI pilot.",
            "full": (
                "pilotbot is the system of record and the weekly nudge for stalled AI pilots: a pre-pilot "
                "baseline, one accountable owner, a scored eval set with an acceptance bar, and a production "
                "path. Ask `status` for the portfolio, answer the weekly check-in card, and get pinged when "
                "an eval drops."
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": ACCENT,
        "bots": [
            {
                "botId": info.app_id,
                "scopes": SCOPES,
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": SCOPES, "commands": command_list()}],
            }
        ],
        "validDomains": [],
    }


def _glyph(draw: ImageDraw.ImageDraw, size: int, inset: float, fill: tuple[int, int, int, int], width: int) -> None:
    """Four tiles (the four gaps), the last one ticked: drawn, not a font, so it renders anywhere."""
    pad = size * inset
    gap = size * 0.06
    tile = (size - 2 * pad - gap) / 2
    for i in range(4):
        x = pad + (i % 2) * (tile + gap)
        y = pad + (i // 2) * (tile + gap)
        box = (round(x), round(y), round(x + tile), round(y + tile))
        if i < 3:
            draw.rounded_rectangle(box, radius=max(1, round(tile * 0.2)), fill=fill)
        else:
            draw.rounded_rectangle(box, radius=max(1, round(tile * 0.2)), outline=fill, width=width)
            pts = [
                (x + tile * 0.25, y + tile * 0.55),
                (x + tile * 0.45, y + tile * 0.75),
                (x + tile * 0.78, y + tile * 0.3),
            ]
            draw.line([(round(a), round(b)) for a, b in pts], fill=fill, width=width)


def color_icon() -> bytes:
    rgb = tuple(int(ACCENT[i : i + 2], 16) for i in (1, 3, 5))
    img = Image.new("RGBA", (COLOR_SIZE, COLOR_SIZE), (*rgb, 255))
    _glyph(ImageDraw.Draw(img), COLOR_SIZE, 0.22, (255, 255, 255, 255), 8)
    return _png(img)


def outline_icon() -> bytes:
    """White on fully transparent: Teams requires exactly this for the outline icon."""
    img = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (255, 255, 255, 0))
    _glyph(ImageDraw.Draw(img), OUTLINE_SIZE, 0.06, (255, 255, 255, 255), 2)
    return _png(img)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def build_package(info: PackageInfo) -> bytes:
    files = {
        "manifest.json": json.dumps(manifest(info), indent=2, ensure_ascii=False).encode(),
        "color.png": color_icon(),
        "outline.png": outline_icon(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():  # flat: Teams wants the three files at the zip's root
            entry = zipfile.ZipInfo(name, ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return buf.getvalue()


def write_package(info: PackageInfo, out: Path) -> int:
    data = build_package(info)
    out.write_bytes(data)
    return len(data)
