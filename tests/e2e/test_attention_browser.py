"""Real browser: click a head in the Attention overview and see that head's pattern open."""

import pytest

from tests.e2e.conftest import open_view, wait_idle

pytestmark = pytest.mark.e2e


def _click_data_point(page, chart_index: int, x: float, y: float) -> None:
    """Click the pixel of data coordinates (x, y) in the chart_index-th plotly chart of the page."""
    chart = page.locator(".js-plotly-plot").nth(chart_index)
    chart.scroll_into_view_if_needed()
    px, py = chart.evaluate(
        """(gd, [x, y]) => {
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.d2p(x), box.top + ya._offset + ya.d2p(y)];
        }""",
        [x, y],
    )
    page.mouse.move(px, py)
    page.wait_for_timeout(300)
    page.mouse.click(px, py)


def test_click_a_head_in_the_overview_opens_it(app_url, page):
    open_view(page, app_url, "attention")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    wait_idle(page, timeout=300_000)
    assert page.get_by_role("heading", name="Layer 0, head 0").is_visible()

    # the overview's click point of (layer 2, head 3): its invisible marker carries customdata (2, 3, ...)
    x, y = (
        page.locator(".js-plotly-plot")
        .nth(0)
        .evaluate(
            """gd => { const t = gd._fullData.find(t => t.customdata && t.mode === "markers");
                   const i = t.customdata.findIndex(c => c[0] === 2 && c[1] === 3); return [t.x[i], t.y[i]]; }"""
        )
    )
    _click_data_point(page, 0, x, y)
    page.get_by_role("heading", name="Layer 2, head 3").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Download attention_L2H3.npz").is_visible()
    assert page.get_by_text("brighter patches get more of the query's attention").first.is_visible()
    # the overview now outlines the new head
    outlined = (
        page.locator(".js-plotly-plot")
        .nth(0)
        .evaluate("gd => gd._fullLayout.shapes.map(s => [s.x0, s.x1, s.y0, s.y1])")
    )
    assert len(outlined) == 1 and outlined[0][0] < x < outlined[0][1] and outlined[0][2] < y < outlined[0][3]

    # click a patch on the one-head image: it becomes the query (outlined patch, selectbox updated)
    _click_data_point(page, 1, 20.0, 12.0)  # image pixels (x=20, y=12) -> patch row 3, col 5
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
