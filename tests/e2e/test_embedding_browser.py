"""Real browser: the class-embedding view renders, the layer slider redraws the map, a box selection lists inputs."""

import re

import pytest

from tests.e2e.conftest import cell_pickers, open_view, wait_idle

pytestmark = pytest.mark.e2e


def _map(page):
    return page.locator(".js-plotly-plot").filter(has_text=re.compile(r"layer \d \("))


def test_layer_slider_and_box_selection(app_url, page):
    open_view(page, app_url, "embedding")
    page.get_by_text("Separability per layer", exact=True).wait_for(timeout=240_000)
    wait_idle(page)
    emb_map = _map(page)
    emb_map.wait_for(timeout=60_000)
    assert "layer 4 (after block 4)" in emb_map.inner_text()
    assert page.get_by_text("Identifiable after the last block").is_visible()

    # the class probabilities per block outline the block of the class map; the slider moves the outline in place
    probs = cell_pickers(page).nth(1)
    outline = probs.locator(".rowsel")
    assert outline.is_visible()
    last, kept = outline.bounding_box()["y"], probs.element_handle()
    block = page.locator("[data-testid='stSlider']").filter(has_text=re.compile(r"^Block")).get_by_role("slider")
    block.focus()
    page.keyboard.press("ArrowLeft")
    page.get_by_text("after block 3").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert outline.bounding_box()["y"] < last and kept.evaluate("cp => cp.isConnected")

    slider = page.locator("[data-testid='stSlider']").filter(has_text="Layer (0 = embeddings)").get_by_role("slider")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_idle(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".some(p => p.textContent.includes('layer 2 (after block 2)'))",
        timeout=60_000,
    )

    emb_map = _map(page)
    emb_map.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = emb_map.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 0.02 * box["width"], box["y"] + 0.02 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.98 * box["width"], box["y"] + 0.98 * box["height"], steps=12)
    page.mouse.up()
    wait_idle(page)
    header = page.get_by_text(re.compile(r"^\d+ selected inputs"))
    header.wait_for(timeout=60_000)
    n = int(header.inner_text().split()[0])
    assert n > 0
    shown = min(n, 60)  # thumbnails of the selected digits (the page shows at most 60)
    page.wait_for_function(
        f"() => document.querySelectorAll(\"[data-testid='stMain'] img\").length >= {shown}", timeout=30_000
    )
