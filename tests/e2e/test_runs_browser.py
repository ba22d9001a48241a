"""Real browser: start a background run of head importance, reload, leave the view, come back to the stored
result, and open the input where a head matters most."""

import pytest

from runs import Store
from tests.e2e.conftest import open_view, wait_idle

pytestmark = pytest.mark.e2e


def test_background_run_survives_a_page_switch(app_url, page):
    open_view(page, app_url, "importance")
    page.get_by_role("button", name="Run head importance on all 360 inputs in the background").click()
    page.get_by_text("/360 inputs").first.wait_for(timeout=120_000)  # the run's process holds its lock
    assert page.get_by_role("button", name="Cancel").is_visible()
    page.reload()  # a new session finds the running run in the store
    page.get_by_text("Running head importance in the background").or_(
        page.get_by_text("Show the stored run")
    ).first.wait_for(timeout=120_000)

    page.locator("[data-testid='stSidebarNav'] a", has_text="Model").click()
    wait_idle(page)
    page.locator("[data-testid='stSidebarNav'] a", has_text="Head importance").click()
    # the run finishes in its own process; the view reads it from the store
    page.get_by_text("Show the stored run: 360 inputs of digits (test)").wait_for(timeout=240_000)
    wait_idle(page, timeout=240_000)
    for heading in ("Inputs where the selected head matters most", "Per class"):  # drawn as the stored run is read
        page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    assert not page.get_by_text("Traceback").count()

    # select the input where head (0, 0) matters most and open it in the sidebar
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)  # the first row's selection box
    wait_idle(page)
    button = page.get_by_role("button", name="Open digits #")
    button.wait_for(timeout=60_000)
    row = button.inner_text().split("#")[1].split()[0]
    button.click()
    wait_idle(page)
    assert page.locator("[data-testid='stSidebar'] [data-testid='stNumberInput'] input").first.input_value() == row

    page.locator("[data-testid='stSidebarNav'] a", has_text="Runs").click()
    wait_idle(page)
    assert page.get_by_text("importance").first.is_visible()
    for key in Store().index()["key"]:
        Store().delete(key)
