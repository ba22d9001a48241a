"""Real browser: open the user's own image folder through the sidebar and compute head importance on it."""

import pytest

from tests.conftest import write_digit_folder
from tests.e2e.conftest import open_view, wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """60 held-out digits in class folders, one corrupt file among them."""
    return write_digit_folder(tmp_path_factory.mktemp("browser_digits"), 60, broken="1")


def test_open_a_folder_and_compute_head_importance(app_url, page, class_folder):
    open_view(page, app_url, "importance")
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stSelectbox']").nth(1).click()
    page.get_by_role("option", name="Open a folder or file…").click()
    wait_idle(page)
    path = sidebar.get_by_label("Folder, table file or hub id")
    path.fill(str(class_folder))
    path.press("Enter")
    wait_idle(page)
    sidebar.get_by_text("60 image inputs").wait_for(timeout=60_000)
    assert sidebar.get_by_text("10 of 10 dataset classes match").is_visible()
    assert sidebar.get_by_text("1 file(s) or row(s)").is_visible()
    assert "Input of browser_digits" in sidebar.inner_text()

    size = page.locator("[data-testid='stMain'] [data-testid='stNumberInput'] input").first
    size.fill("12")
    size.press("Enter")
    wait_idle(page)
    assert page.get_by_text("a seeded sample of 12 of 60 in browser_digits").first.is_visible()
    page.get_by_role("button", name="Compute head importance").click()
    page.get_by_text("Partial pruning of the selected head").wait_for(timeout=300_000)
    wait_idle(page, timeout=300_000)
    assert page.get_by_role("heading", name="Per class").is_visible()
    assert page.get_by_text("Download head_importance_scores.csv").is_visible()
    assert not page.get_by_text("Traceback").count()
