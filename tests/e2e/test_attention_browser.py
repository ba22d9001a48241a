"""Real browser: click a head in the Attention overview and see that head's pattern open."""

import pytest
from PIL import Image

from tests.e2e.conftest import FIGURES, OUTLINED_CELL, PICTURE_SHOWN, cell_pickers, click_cell, open_view, wait_idle

pytestmark = pytest.mark.e2e


def test_click_a_head_in_the_overview_opens_it(app_url, page):
    open_view(page, app_url, "attention")
    overview = cell_pickers(page).first
    overview.wait_for(timeout=120_000)
    wait_idle(page, timeout=300_000)
    assert page.get_by_role("heading", name="Layer 0, head 0").is_visible()
    assert overview.evaluate(OUTLINED_CELL) == [0, 0]
    kept = overview.element_handle()

    # hovering a cell names its head; a click opens it and the overview outlines it, drawn in place
    overview.locator(".cell").nth(2 * 4 + 3).hover()  # digits-vit: 4 heads a layer
    assert overview.locator(".tip").inner_text().startswith("layer 2 head 3")
    click_cell(overview, 2, 3)
    page.get_by_role("heading", name="Layer 2, head 3").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Download attention_L2H3.npz").is_visible()
    assert page.get_by_text("brighter patches get more of the query's attention").first.is_visible()
    assert overview.evaluate(OUTLINED_CELL) == [2, 3]
    assert kept.evaluate("cp => cp.isConnected")  # the same element: the overview was not mounted again

    # a head chosen elsewhere (the picker): the overview moves its outline there
    page.locator("[data-testid='stNumberInput']").filter(has_text="Head").locator(
        "[data-testid='stNumberInputStepDown']"
    ).click()
    page.get_by_role("heading", name="Layer 2, head 2").wait_for(timeout=60_000)
    wait_idle(page)
    assert overview.evaluate(OUTLINED_CELL) == [2, 2] and kept.evaluate("cp => cp.isConnected")
    picture = overview.locator("img").get_attribute("src")
    assert picture.startswith("data:image/png")

    # click a patch on the one-head image: it becomes the query (outlined patch, selectbox updated)
    query = cell_pickers(page).nth(1)
    click_cell(query, 3, 5)
    page.get_by_text("patch row 3, col 5").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert query.evaluate(OUTLINED_CELL) == [3, 5]

    # the PNG link (shown on hover, as plotly's camera) downloads the picture as drawn, at twice its size
    query.hover()
    with page.expect_download() as download:
        query.locator(".save").click()
    assert download.value.suggested_filename == "attention_L2H2.png"
    box = query.locator(".plot").bounding_box()
    size = Image.open(download.value.path()).size
    assert abs(size[0] - 2 * box["width"]) <= 2 and abs(size[1] - 2 * box["height"]) <= 2


def test_a_picture_the_page_got_comes_again_as_its_id(app_url, page):
    """The server sends a picture it sent lately as its id only, and the page draws it from the ones it kept, also
    in a view opened again; a page that lost them (here: cleared) asks for the picture and gets it whole."""
    open_view(page, app_url, "attention")
    overview = cell_pickers(page).first
    overview.wait_for(timeout=120_000)
    wait_idle(page, timeout=300_000)
    picture = overview.locator("img").get_attribute("src")
    for lost in (False, True):
        if lost:
            page.evaluate("window.__headscopePictures.clear()")
        page.get_by_role("link", name="Home", exact=True).click()
        page.get_by_role("heading", name="HeadScope").first.wait_for(timeout=300_000)
        page.get_by_test_id("stSidebarNavLink").filter(has_text="Attention").click()
        overview = cell_pickers(page).first  # a picker that lacks its picture shows nothing until it comes
        page.wait_for_function(
            """picture => [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')].some(
                host => host.shadowRoot && host.shadowRoot.querySelector(".cp img")?.src === picture)""",
            arg=picture,
            timeout=300_000,
        )
        wait_idle(page)
        assert overview.locator("img").get_attribute("src") == picture and overview.evaluate(PICTURE_SHOWN), lost
        assert overview.evaluate(OUTLINED_CELL) == [0, 0]


def test_switching_back_to_a_tab_keeps_its_charts(app_url, page):
    """Heads and Distance stay drawn while the user switches between them: going back shows the same charts
    (the same chart elements, not drawn again)."""
    open_view(page, app_url, "attention")
    cell_pickers(page).first.wait_for(timeout=120_000)
    wait_idle(page, timeout=300_000)
    page.get_by_role("tab", name="Distance and strength").click()
    page.get_by_role("heading", name="Attention distance per head").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)
    charts = page.locator(FIGURES).evaluate_all("cs => { cs.forEach(c => { c.__kept = true; }); return cs.length; }")
    assert charts >= 7  # the distance tab's charts and grids, and the heads tab's kept hidden
    for name, heading in (("Heads of this input", "Layer 0, head 0"), ("Distance and strength", "Ring strength")):
        page.get_by_role("tab", name=name).click()
        wait_idle(page)
        assert page.get_by_role("heading", name=heading).first.is_visible()
        kept = page.locator(FIGURES).evaluate_all("cs => cs.filter(c => c.__kept).length")
        assert kept == charts
