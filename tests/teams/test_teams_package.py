"""The Teams app package: what Teams' upload checks, read back from the zip the CLI writes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from adapters.cli import app
from adapters.teams.package import MAX_COMMANDS, PackageError, PackageInfo, manifest
from bot.commands import COMMAND_NAMES, UnknownCommand, parse
from bot.errors import UserError
from bot.views import help_reply

APP_ID = "00000000-0000-4000-8000-0000000000b0"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("pkg") / "pilotbot-teams.zip"
    result = CliRunner().invoke(app, ["manifest", "teams", "--app-id", APP_ID, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        return {n: z.read(n) for n in z.namelist()}


def test_zip_holds_exactly_the_three_files_at_its_root(package: dict[str, bytes]) -> None:
    assert sorted(package) == ["color.png", "manifest.json", "outline.png"]
    assert all(0 < len(b) < 100_000 for b in package.values())


def test_manifest_fields(package: dict[str, bytes]) -> None:
    m = json.loads(package["manifest.json"])
    assert m["manifestVersion"] == "1.22"
    assert m["$schema"].endswith("/v1.22/MicrosoftTeams.schema.json")
    assert m["id"] == APP_ID and m["version"] == "1.0.0"
    assert m["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert len(m["name"]["short"]) <= 30 and len(m["name"]["full"]) <= 100
    assert len(m["description"]["short"]) <= 80 and len(m["description"]["full"]) <= 4000
    assert all(m["developer"][k].startswith("https://") for k in ("websiteUrl", "privacyUrl", "termsOfUseUrl"))
    assert m["accentColor"].startswith("#") and len(m["accentColor"]) == 7
    [bot] = m["bots"]
    assert bot["botId"] == APP_ID
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    [menu] = bot["commandLists"]
    assert menu["scopes"] == bot["scopes"]
    assert 0 < len(menu["commands"]) <= MAX_COMMANDS
    for c in menu["commands"]:
        assert len(c["title"]) <= 32 and len(c["description"]) <= 128
        # Every menu entry is a command the shared grammar parses, and help lists it.
        assert c["title"] in COMMAND_NAMES
        try:
            parse(c["title"])
        except UnknownCommand:  # pragma: no cover - the assertion below explains
            pytest.fail(f"menu command {c['title']} is not in the grammar")
        except UserError:
            pass  # known command, arguments missing: fine for a menu entry
        assert any(line.startswith(f"`{c['title']}") for line in help_reply().lines)
    assert {"help", "status", "new"} <= {c["title"] for c in menu["commands"]}


def test_icons(package: dict[str, bytes]) -> None:
    color = Image.open(io.BytesIO(package["color.png"]))
    assert color.format == "PNG" and color.size == (192, 192)
    outline = Image.open(io.BytesIO(package["outline.png"])).convert("RGBA")
    assert outline.size == (32, 32)
    raw = outline.tobytes()  # RGBA, 4 bytes per pixel
    pixels = [tuple(raw[i : i + 4]) for i in range(0, len(raw), 4)]
    # White on transparent: every visible pixel is white, and the background is fully transparent.
    assert all((r, g, b) == (255, 255, 255) for r, g, b, a in pixels if a > 0)
    assert any(a == 0 for *_, a in pixels) and any(a == 255 for *_, a in pixels)
    assert pixels[0][3] == 0  # the corner is background


def test_bad_options_are_one_sentence(tmp_path: Path) -> None:
    out = tmp_path / "x.zip"
    result = CliRunner().invoke(app, ["manifest", "teams", "--app-id", "not-a-guid", "--out", str(out)])
    assert result.exit_code == 2
    assert "--app-id must be the bot's Microsoft App ID (a GUID)" in result.output
    assert not out.exists()
    with pytest.raises(PackageError, match="https://"):
        manifest(PackageInfo(APP_ID, website="http://insecure.example"))


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    from adapters.teams.package import build_package

    assert build_package(PackageInfo(APP_ID)) == build_package(PackageInfo(APP_ID))
