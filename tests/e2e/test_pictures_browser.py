"""Real browser: two cell pickers with the same picture in one run, the second sent as the picture's id only, both
draw it, on the first run and on the next ones (ids only)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.e2e.conftest import PICTURE_SHOWN, cell_pickers, serve_app, wait_idle

pytestmark = pytest.mark.e2e
APP = "tests/e2e/pictures_app.py"  # from the repository root (AppTest: from this file's folder)


def test_the_server_sends_a_picture_whole_once():
    at = AppTest.from_file("pictures_app.py").run()
    first, second = (json.loads(c.proto.json) for c in at.get("bidi_component"))
    assert first["picture"].startswith("data:image/png") and second["picture"] is None
    assert first["picture_id"] == second["picture_id"]
    at.number_input(key="run").set_value(1).run()
    assert all(json.loads(c.proto.json)["picture"] is None for c in at.get("bidi_component"))


def test_two_pickers_of_one_picture_both_draw_it(page):
    with serve_app(APP) as url:
        page.goto(url)
        wait_idle(page)
        pickers = cell_pickers(page)
        pickers.nth(1).wait_for(timeout=60_000)
        for run in (1, 2):
            assert pickers.count() == 2
            assert all(pickers.nth(i).evaluate(PICTURE_SHOWN) for i in range(2)), run
            sources = {pickers.nth(i).locator("img").get_attribute("src") for i in range(2)}
            assert len(sources) == 1 and sources.pop().startswith("data:image/png")
            page.locator("[data-testid='stNumberInputStepUp']").click()  # a rerun: both sent as the id
            wait_idle(page)
