"""Real browser: compute head importance, click a head in a score grid, see its partial-pruning curve."""

import pytest

from tests.e2e.conftest import OUTLINED_CELL, ROOT, cell_pickers, click_cell, open_view, wait_idle

pytestmark = pytest.mark.e2e


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

    click_cell(cell_pickers(page).first, 2, 3)  # a score grid's cell of layer 2, head 3
    page.get_by_text("gate of layer 2 head 3").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert page.get_by_text("Download partial_pruning_L2H3.csv").is_visible()
    # every grid outlines the new head
    assert cell_pickers(page).evaluate_all(f"cps => cps.map({OUTLINED_CELL})") == [[2, 3]] * 3

    if (ROOT / "pages" / "attention.py").exists():  # the same selection in the attention view
        page.locator("[data-testid='stSidebarNav'] a", has_text="Attention").click()
        wait_idle(page, timeout=300_000)
        page.get_by_role("heading", name="Layer 2, head 3").wait_for(timeout=120_000)
