"""Real browser: Home and Model render, switching the model redraws the prediction."""
import pytest

from tests.e2e.conftest import open_view, wait_idle

pytestmark = pytest.mark.e2e


def test_home_model_and_switch(app_url, page):
    open_view(page, app_url, "")
    assert page.get_by_text("HeadScope").first.is_visible()
    assert page.get_by_text("Pick a model and an input").first.is_visible()

    open_view(page, app_url, "model")
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Prediction:").first.is_visible()
    assert page.locator("[data-testid='stMetricValue']").first.inner_text().endswith("%")
    bars = page.locator(".js-plotly-plot .bars .point")
    assert bars.count() == 5

    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="minilm", exact=True).click()
    wait_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("BertModel").first.is_visible()
    assert page.get_by_text("Prediction:").first.is_visible()
    assert page.locator(".js-plotly-plot .bars .point").count() == 5
