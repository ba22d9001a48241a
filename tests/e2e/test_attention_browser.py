"""Real browser: click a head in the Attention overview and see that head's pattern open."""

import pytest

from tests.e2e.conftest import OUTLINED_HEAD, click_data_point, open_view, wait_idle

pytestmark = pytest.mark.e2e


def test_click_a_head_in_the_overview_opens_it(app_url, page):
    open_view(page, app_url, "attention")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    wait_idle(page, timeout=300_000)
    assert page.get_by_role("heading", name="Layer 0, head 0").is_visible()

    # the overview's cell of (layer 2, head 3): its invisible clickable cell carries customdata (2, 3, ...)
    overview = page.locator(".js-plotly-plot").nth(0)
    assert overview.evaluate(OUTLINED_HEAD) == [[0, 0]]
    x, y, base = overview.evaluate(
        """gd => { const t = gd._fullData.find(t => t.name === "heads");
               const i = t.customdata.findIndex(c => c[0] === 2 && c[1] === 3); return [t.x[i], t.y[i], t.base[i]]; }"""
    )
    kept = overview.element_handle()
    click_data_point(page, 0, x, base + y / 2)
    page.get_by_role("heading", name="Layer 2, head 3").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Download attention_L2H3.npz").is_visible()
    assert page.get_by_text("brighter patches get more of the query's attention").first.is_visible()
    # the overview outlines the clicked head itself (plotly's selection): the figure stayed, so the browser kept
    # the chart instead of drawing it again
    assert overview.evaluate(OUTLINED_HEAD) == [[2, 3]]
    assert page.evaluate("node => node === document.querySelector('.js-plotly-plot')", kept)
    # a head chosen elsewhere (the picker): the overview is sent again, outlining it
    page.locator("[data-testid='stNumberInput']").filter(has_text="Head").locator(
        "[data-testid='stNumberInputStepDown']"
    ).click()
    page.get_by_role("heading", name="Layer 2, head 2").wait_for(timeout=60_000)
    wait_idle(page)
    overview = page.locator(".js-plotly-plot").nth(0)
    assert overview.evaluate(OUTLINED_HEAD) == [[2, 2]]
    assert not page.evaluate("node => node === document.querySelector('.js-plotly-plot')", kept)

    # click a patch on the one-head image: it becomes the query (outlined patch, selectbox updated)
    click_data_point(page, 1, 20.0, 12.0)  # image pixels (x=20, y=12) -> patch row 3, col 5
    page.get_by_text("patch row 3, col 5").first.wait_for(timeout=60_000)
    wait_idle(page)


def test_switching_back_to_a_tab_keeps_its_charts(app_url, page):
    """Heads and Distance stay drawn while the user switches between them: going back shows the same charts
    (the same plotly elements, not drawn again)."""
    open_view(page, app_url, "attention")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    wait_idle(page, timeout=300_000)
    page.get_by_role("tab", name="Distance and strength").click()
    page.get_by_role("heading", name="Attention distance per head").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)
    charts = page.evaluate(
        "() => { const c = [...document.querySelectorAll('.js-plotly-plot')]; c.forEach(gd => gd.__kept = true);"
        " return c.length; }"
    )
    assert charts >= 4  # the distance tab's charts, and the heads tab's kept hidden
    for name, heading in (("Heads of this input", "Layer 0, head 0"), ("Distance and strength", "Ring strength")):
        page.get_by_role("tab", name=name).click()
        wait_idle(page)
        assert page.get_by_role("heading", name=heading).first.is_visible()
        kept = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].filter(gd => gd.__kept).length")
        assert kept == charts
