from __future__ import annotations

import io

from PIL import Image

from bot.charts import attach_chart, render_history_png
from bot.core import Core
from bot.replies import Reply, Series
from tests.api.conftest import ANA, seed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_render_history_png_is_a_valid_png() -> None:
    data = render_history_png(
        [
            Series("eval score", (90.0, 93.5, 96.2), 95.0, "bar 95%", "%"),
            Series("handle_time", (12.0, 10.0, 9.0), 14.0, "baseline 14 min", " min"),
            Series("empty", ()),
        ],
        title="History of legal-intake",
    )
    assert data.startswith(PNG_MAGIC)
    img = Image.open(io.BytesIO(data))
    img.verify()
    assert img.format == "PNG" and img.size[0] == 700 and img.size[1] > 600


def test_attach_chart_from_the_history_reply(core: Core) -> None:
    seed(core)
    for cmd in (
        "eval legal-intake 93 cases 150",
        "eval legal-intake 96.5 cases 150",
        "measure support-drafts handle_time 9",
    ):
        assert core.router.handle(cmd, ANA).ok
    reply = core.router.handle("history legal-intake", ANA)
    data = attach_chart(reply)
    assert data is not None and data.startswith(PNG_MAGIC)
    assert attach_chart(Reply(text="no series")) is None
    assert render_history_png([]).startswith(PNG_MAGIC)
