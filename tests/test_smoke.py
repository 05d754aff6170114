from bot.core import Core
from bot.ports import Actor

ANA = Actor("console", "ana", "Ana")


def test_new_and_status(core: Core) -> None:
    r = core.router.handle("new demo-one First pilot", ANA)
    assert r.ok, r.text
    r = core.router.handle("status demo-one", ANA)
    assert r.card is not None and r.card.slug == "demo-one"
