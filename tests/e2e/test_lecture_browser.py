"""Real browser: a deep link opens its state, "Copy link" copies an address that reopens the same state in a new
page, a link's values cannot make the page fetch or show anything they name, and the tour is walked with the
keyboard (PageDown, as a presentation clicker sends) in the presenter layout, with a screenshot of every step."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import FIGURES, serve_app, wait_idle
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


PANEL = ".st-key-tour_panel"


def drag_first_slider(page) -> None:
    """Drag the main area's first slider a third of its width to the right (leaving the focus on its handle)."""
    handle = page.locator("[data-testid='stMain'] [data-testid='stSlider'] input[type='range']").first.locator("../..")
    handle.scroll_into_view_if_needed()
    track = page.locator("[data-testid='stMain'] [data-testid='stSlider']").first.bounding_box()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + track["width"] / 3, y, steps=8)
    page.mouse.up()


def test_walk_the_tour_with_pagedown_on_a_projector(app_url, browser, tmp_path):
    """1280x720, the presenter layout: every step opens with its whole panel in view, and PageDown moves the tour
    even right after a slider was dragged (the focus on its handle)."""
    steps = load_tour(TOURS_DIR / "intro.toml").steps
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    page.goto(f"{app_url}/tour?present=1")
    wait_idle(page)
    assert query(page.url).get("present") == "1"
    page.wait_for_function("window.__headscopeTourKeys", timeout=10_000)  # the keys, before the tour starts
    start = page.get_by_role("button", name="Start the tour")
    start.scroll_into_view_if_needed()  # below the fold at this size: the first step must still open at the top
    start.click()
    for k, step in enumerate(steps):
        page.locator(PANEL).get_by_role("heading", name=step.title).wait_for(timeout=120_000)
        wait_idle(page)
        assert urlsplit(page.url).path.endswith("/" + step.view) and query(page.url).get("present") == "1"
        assert f"step {k + 1} of {len(steps)}" in page.locator(PANEL).inner_text()  # and it stays there
        page.screenshot(path=str(tmp_path / f"step{k + 1:02d}.png"))
        panel = page.locator(PANEL).bounding_box()
        assert panel["y"] >= 0 and panel["y"] + panel["height"] <= 720, (k + 1, panel)
        if step.figure:  # its button brings the figure's heading into view (the keys still move the tour)
            figure = page.locator(PANEL).get_by_role("button", name="Show the figure")
            figure.wait_for(timeout=120_000)  # a step's figure of a run the tour started: once the run is stored
            wait_idle(page)  # and the view has drawn it
            size = "el => getComputedStyle(el).fontSize"  # in the presenter layout's size, as Next is
            assert figure.evaluate(size) == page.locator(".st-key-tour_next button p").first.evaluate(size)
            figure.click()
            heading = page.locator("[data-testid='stMain'] :is(h2, h3)").filter(has_text=step.figure).first
            expect(heading).to_be_in_viewport(timeout=30_000)  # drawn, then scrolled to, on a busy machine
        if k == 7:  # "Drag the temperature to 4"
            tau = query(page.url)["tau"]
            drag_first_slider(page)
            wait_idle(page)
            assert query(page.url)["tau"] != tau
        if k < len(steps) - 1:
            page.keyboard.press("PageDown")
    page.keyboard.press("PageUp")
    page.locator(PANEL).get_by_role("heading", name=steps[-2].title).wait_for(timeout=120_000)
    page.context.close()


# links whose values hold Markdown, HTML, numbers that are not finite, paths and hub ids
HOSTILE = [
    {
        "view": "attention",
        "tab": "[Your session expired: log in again](http://example.invalid/login)",
        "model": "![p](http://127.0.0.1:9/pixel.png)",
        "layer": "nan",
        "head": "inf",
    },
    {"view": "spectral", "tab": "Activation lab", "amplitude": "nan", "tones": "<img src=http://127.0.0.1:9/t.png>"},
    {"view": "model", "model": "../../etc", "input": "\u0663", "dataset": "/"},
    {"view": "model", "model": "someone/not-cached-here", "input": "<b>5</b>"},
]
MESSAGE = "[data-testid='stAlert']:has-text('The link was opened with changes')"


@pytest.mark.parametrize("params", HOSTILE, ids=lambda p: p["view"] + "-" + p.get("model", p.get("tab", "")))
def test_a_link_cannot_fetch_or_show_what_its_values_name(app_url, page, params):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{app_url}/?{urlencode(params)}")
    wait_idle(page)
    if params.get("model") == "someone/not-cached-here":  # a hub id asks first; no: the rest of the link opens
        expect(page.get_by_text("This link loads someone/not-cached-here from the Hugging Face hub")).to_be_visible()
        page.get_by_role("button", name="instead").click()
        wait_idle(page)
    expect(page.locator(MESSAGE)).to_have_count(1)
    message = page.locator(MESSAGE).inner_text().replace("\u2060", "")  # the word joiners that stop autolinks
    for value in params.values():
        if value != params["view"] and value not in ("Activation lab",):
            assert value in message, (value, message)  # each value shown as typed, character for character
    assert page.locator(MESSAGE).locator("a, img, b").count() == 0  # no link, picture or HTML in the message
    assert page.locator("a[href*='example.invalid'], img[src*='127.0.0.1:9']").count() == 0  # nor anywhere
    # no request but to the app (and to the font server Streamlit draws its icons from, link or not)
    hosts = {urlsplit(u).netloc for u in requests} - {urlsplit(app_url).netloc, "", "fonts.gstatic.com"}
    assert hosts == set(), sorted(u for u in requests if urlsplit(u).netloc in hosts)


def test_a_fresh_server_opened_on_a_deep_link_says_at_once_what_it_loads(browser):
    with serve_app() as url:  # a server of its own: nothing imported or loaded yet
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/attention?model=digits-vit&input=7&present=1", wait_until="commit")
        loading = page.locator("[data-testid='stMain'] [data-testid='stExpander']").filter(has_text="Loading PyTorch")
        loading.wait_for(timeout=10_000)
        assert page.locator("[data-testid='stMain'] h1").count() == 0  # it comes before the view
        page.locator(FIGURES).first.wait_for(timeout=120_000)
        expect(loading).to_have_count(0)
        page.close()
