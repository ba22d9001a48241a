"""Real browser: Home and Model render, switching the model redraws the prediction."""

import pytest

from tests.e2e.conftest import open_view, serve_app, wait_idle

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


def _upload(page, name: str, data: bytes, mime: str) -> None:
    page.locator("[data-testid='stSidebar'] input[type='file']").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    wait_idle(page)


def test_upload_a_digit_and_a_corrupt_file(app_url, page):
    import io

    import numpy as np
    from PIL import Image

    from data import load_dataset

    # a held-out scan drawn as dark ink on white paper, 10x larger: the app offers to invert it
    scan = np.asarray(load_dataset("digits", "test").inputs[3])
    paper = Image.fromarray(255 - scan).resize((80, 80), Image.NEAREST)
    buf = io.BytesIO()
    paper.save(buf, format="PNG")
    open_view(page, app_url, "model")
    page.locator("[data-testid='stSidebar'] label").filter(has_text="Upload an image").click()
    wait_idle(page)
    _upload(page, "digit.png", buf.getvalue(), "image/png")
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.get_by_role("checkbox", name="Invert (dark ink on light paper)").is_checked()
    label = load_dataset("digits", "test").labels[3]
    assert page.get_by_text(f"Prediction: {label} (").first.is_visible()

    _upload(page, "broken.png", b"\x89PNG\r\n\x1a\nthis is not really a png", "image/png")
    alert = page.locator("[data-testid='stSidebar'] [data-testid='stAlert']").filter(has_text="broken.png")
    alert.first.wait_for(timeout=60_000)
    assert "not an image" in alert.first.inner_text() or "corrupt" in alert.first.inner_text()
    assert not page.get_by_text("Traceback").count()


def test_a_fresh_servers_first_request_for_a_view_routes_through_app_py(page):
    """Streamlit's legacy pages/ discovery would run the view alone and list the raw file names."""
    with serve_app() as url:
        page.goto(f"{url}/importance")
        page.get_by_role("heading", name="Head importance").first.wait_for(timeout=120_000)
        wait_idle(page)
        nav = [t.split("\n")[-1] for t in page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]
        assert nav[:4] == ["Home", "Model", "Attention", "Head importance"] and "app" not in nav
        assert page.locator("[data-testid='stSidebar']").get_by_text("Dataset").first.is_visible()


def test_a_figures_numbers_download_when_clicked(app_url, page):
    """Downloads are written only when clicked (deferred data): the file arrives with the figure's numbers, and
    the click does not rerun the page."""
    open_view(page, app_url, "model")
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    wait_idle(page)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download top5.csv").click()
    download = info.value
    assert download.suggested_filename == "top5.csv"
    lines = open(download.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == "class,probability,logit" and len(lines) == 1 + 10  # every digit class
