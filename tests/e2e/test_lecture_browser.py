"""Real browser: a deep link opens its state, "Copy link" copies an address that reopens the same state in a new
page, and the tour is walked with the keyboard (PageDown, as a presentation clicker sends) in the presenter
layout, with a screenshot of every step."""

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import FIGURES, wait_idle
from ui.tour import TOURS_DIR, load_tour

pytestmark = pytest.mark.e2e


def query(address: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(address).query).items()}


def expect_sidebar_input(page, value: str) -> None:
    """The sidebar's input number shows `value` (waited for: the box takes the run's value a frame later)."""
    expect(page.locator("[data-testid='stSidebar'] [data-testid='stNumberInput'] input").first).to_have_value(value)


def test_deep_link_and_copy_link_reopen_the_same_state(app_url, page, browser):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    page.goto(f"{app_url}/attention?model=digits-vit&input=7&layer=2&head=1&tab=Heads+of+this+input")
    wait_idle(page)
    page.locator(FIGURES).first.wait_for(timeout=60_000)
    expect_sidebar_input(page, "7")
    shown = query(page.url)
    assert shown["layer"] == "2" and shown["head"] == "1" and shown["input"] == "7"

    page.get_by_role("button", name="Copy link").click()
    code = page.locator("[data-testid='stPopoverBody'] [data-testid='stCode']").first
    code.wait_for(timeout=30_000)
    code.hover()
    page.locator("[data-testid='stPopoverBody']").get_by_role("button", name="Copy to clipboard").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert query(copied) == shown and urlsplit(copied).path.endswith("/attention")

    other = page.context.new_page()
    other.goto(copied)
    wait_idle(other)
    other.locator(FIGURES).first.wait_for(timeout=60_000)
    assert query(other.url) == shown
    expect_sidebar_input(other, "7")
    other.close()


def test_walk_the_tour_with_the_keyboard_in_presenter_mode(app_url, page, tmp_path):
    steps = load_tour(TOURS_DIR / "intro.toml").steps
    page.goto(f"{app_url}/tour?present=1")
    wait_idle(page)
    assert query(page.url).get("present") == "1"
    page.get_by_role("button", name="Start the tour").click()
    for k, step in enumerate(steps):
        page.get_by_role("heading", name=step.title).first.wait_for(timeout=120_000)
        wait_idle(page)
        assert urlsplit(page.url).path.endswith("/" + step.view) and query(page.url).get("present") == "1"
        page.screenshot(path=str(tmp_path / f"step{k + 1:02d}.png"))
        if k < len(steps) - 1:
            page.get_by_role("heading", name=step.title).first.click()  # the keys go to the page, not a widget
            page.keyboard.press("PageDown")
    page.keyboard.press("PageUp")
    page.get_by_role("heading", name=steps[-2].title).first.wait_for(timeout=120_000)
