"""Real browser: the Relevance view draws the maps and the conservation figure, changes the target class,
scores faithfulness on a small sample, and works for the text model."""

import pytest

from tests.e2e.conftest import FIGURES, cell_pickers, open_view, wait_idle

pytestmark = pytest.mark.e2e


def _figures(page, at_least: int, timeout: float = 180_000) -> int:
    """The number of figures (plotly charts and map pictures) once at least `at_least` are drawn."""
    page.locator(FIGURES).nth(at_least - 1).wait_for(timeout=timeout)
    wait_idle(page)
    return page.locator(FIGURES).count()


def test_relevance_view(app_url, page):
    open_view(page, app_url, "relevance")
    assert _figures(page, 5) == 5  # four map pictures (one per default method) + the conservation scatter
    assert page.get_by_role("heading", name="Relevance").first.is_visible()
    assert page.get_by_text("Maps for class").first.is_visible()
    assert page.get_by_text("(predicted, probability").first.is_visible()
    assert [p.locator("img").count() for p in cell_pickers(page).all()] == [1] * 4  # each map over the image

    page.locator("[data-testid='stSelectbox']").filter(has_text="Target class").first.click()
    page.get_by_role("option").filter(has_text="7:").first.click()
    wait_idle(page)
    assert page.get_by_text("Maps for class 7").first.is_visible()

    page.get_by_label("Dataset sample size", exact=True).fill("4")
    page.get_by_role("button", name="Score faithfulness").click()
    page.wait_for_selector("text=Where the methods disagree most", timeout=300_000)
    wait_idle(page)
    assert page.get_by_text("Scores over 4 inputs of digits").first.is_visible()
    assert _figures(page, 8) == 8  # + perturbation, deletion/insertion curves and the gallery
    assert page.get_by_role("button", name="Download relevance_faithfulness.csv").is_visible()

    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="minilm", exact=True).click()
    wait_idle(page)
    _figures(page, 2)
    words = cell_pickers(page).first.locator(".celltext")  # a text's maps: its word pieces, coloured
    words.first.wait_for(timeout=60_000)
    assert words.count() > 3
    assert page.get_by_text("Maps for class").first.is_visible()
    assert page.get_by_text("Conservation: AttnLRP relevance vs the logit").first.is_visible()
