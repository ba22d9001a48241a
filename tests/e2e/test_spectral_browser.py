"""Real browser: the Spectral view renders, moving the temperature slider redraws the figures, another tab opens
at the same temperature, and a head clicked in its grid brings its response."""

import pytest

from tests.e2e.conftest import OUTLINED_CELL, cell_pickers, click_cell, open_view, wait_idle

pytestmark = pytest.mark.e2e

# the y values of every trace of the first figure (HC/DC per layer), as plotly holds them
FIRST_Y = "() => document.querySelectorAll('.js-plotly-plot')[0].data.map(t => JSON.stringify(t.y))"


def test_temperature_slider_redraws(app_url, page):
    open_view(page, app_url, "spectral")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("High- vs low-frequency energy per layer").first.is_visible()
    assert page.get_by_text("drawn at τ = 1 on every layer").first.is_visible()
    assert page.locator(".js-plotly-plot").count() == 3  # lazy tabs: the open tab's figures only
    before = page.evaluate(FIRST_Y)

    thumb = page.locator("[data-testid='stSlider'] input[type='range']").first
    assert thumb.get_attribute("aria-valuetext") in ("1.0", "1")
    thumb.focus()
    page.keyboard.press("ArrowRight")  # 1.0 -> 1.5
    page.get_by_text("drawn at τ = 1.5 on every layer").first.wait_for(timeout=120_000)
    wait_idle(page)
    after = page.evaluate(FIRST_Y)
    assert len(after) == len(before) == 6 and all(len(y) > 2 for y in after)
    assert after != before  # the HC/DC figure was redrawn under the new temperature
    assert not page.locator("[data-testid='stException']").count()

    page.get_by_role("tab", name="Heads").click()
    page.get_by_text("A head's frequency response").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("drawn at τ = 1.5 on every layer").first.is_visible()
    assert cell_pickers(page).count() == 2  # the head grid and the head's 2-D response
    assert page.locator(".js-plotly-plot:visible").count() == 1  # the head's gain and eigenvalues
    assert page.locator(".js-plotly-plot").count() == 4  # the low-pass tab's three stay drawn, hidden

    grid, response = cell_pickers(page).nth(0), cell_pickers(page).nth(1)
    click_cell(grid, 1, 2)  # a head clicked in the grid: its gain, eigenvalues and 2-D response follow
    page.get_by_text("gain of L1 H2").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert grid.evaluate(OUTLINED_CELL) == [1, 2]
    assert response.locator(".title").inner_text() == "2-D response of L1 H2"
    assert response.locator(".cell").count() == response.evaluate("cp => cp.cols") ** 2 > 1  # a cell per frequency pair
