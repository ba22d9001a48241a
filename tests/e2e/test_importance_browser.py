"""Real browser: compute head importance, click a head in a score grid, see its partial-pruning curve."""

import pytest

from tests.e2e.conftest import ROOT, open_view, wait_idle

pytestmark = pytest.mark.e2e


def _click_head(page, chart_index: int, layer: int, head: int, n_heads: int) -> None:
    """Click the square of (layer, head) in a ui.figures.head_grid chart (points in row-major order)."""
    chart = page.locator(".js-plotly-plot").nth(chart_index)
    chart.scroll_into_view_if_needed()
    point = chart.locator(".scatterlayer .trace").first.locator("path.point").nth(layer * n_heads + head)
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_click_a_head_selects_it_here_and_in_the_attention_view(app_url, page):
    open_view(page, app_url, "importance")
    size = page.locator("[data-testid='stMain'] [data-testid='stNumberInput'] input").first
    size.fill("16")
    size.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Compute head importance").click()
    page.get_by_text("Partial pruning of the selected head").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)
    assert page.get_by_text("gate of layer 0 head 0").first.is_visible()
    assert page.get_by_text("Download head_importance_scores.csv").is_visible()

    _click_head(page, 0, 2, 3, n_heads=4)  # digits-vit: 4 x 4 heads
    page.get_by_text("gate of layer 2 head 3").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("Download partial_pruning_L2H3.csv").is_visible()
    # every grid outlines the new head (a red rectangle around its cell)
    outline = (
        page.locator(".js-plotly-plot")
        .nth(1)
        .evaluate("gd => gd.layout.shapes.map(s => [(s.x0 + s.x1) / 2, (s.y0 + s.y1) / 2])")
    )
    assert outline == [[3, 2]]

    if (ROOT / "pages" / "attention.py").exists():  # the same selection in the attention view
        page.locator("[data-testid='stSidebarNav'] a", has_text="Attention").click()
        wait_idle(page, timeout=300_000)
        page.get_by_role("heading", name="Layer 2, head 3").wait_for(timeout=120_000)
