// The running tour in the browser (ui/tour.py): PageDown / PageUp, what a presentation clicker sends, press Next /
// Back wherever the focus is, a slider or a text box included (one listener on the window, in the capture phase,
// ahead of any widget's own); a new step opens scrolled to the top, its panel in view, and again once its view has
// finished drawing (a tab or figure drawn below must not leave it scrolled); a step that names a figure gets a
// button that scrolls to that figure's heading.
const KEYS = { PageDown: "tour_next", PageUp: "tour_back" };

function press(event) {
  const button = KEYS[event.key] && document.querySelector(`.st-key-${KEYS[event.key]} button`);
  if (!button) return; // another key, or no tour running
  event.preventDefault();
  event.stopImmediatePropagation();
  if (button.disabled) return;
  document.activeElement?.blur?.();
  button.click();
}

function toTop() {
  for (const el of document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')) {
    el.scrollTop = 0;
  }
  window.scrollTo(0, 0);
}

// scroll to the main area's first heading that starts with `title`; one still being drawn is waited for (30 s)
function toFigure(title) {
  const find = () =>
    [...document.querySelectorAll('[data-testid="stMain"] :is(h1, h2, h3, h4, h5, h6)')].find((h) =>
      h.textContent.trim().startsWith(title),
    );
  const show = (heading) => heading.scrollIntoView({ block: "start", behavior: "smooth" });
  const heading = find();
  if (heading) return show(heading);
  const drawn = new MutationObserver(() => {
    const later = find();
    if (!later) return;
    drawn.disconnect();
    show(later);
  });
  drawn.observe(document.querySelector('[data-testid="stMain"]') ?? document.body, { childList: true, subtree: true });
  setTimeout(() => drawn.disconnect(), 30000);
}

export default function ({ parentElement, data }) {
  if (!window.__headscopeTourKeys) {
    window.addEventListener("keydown", press, true);
    window.__headscopeTourKeys = true;
  }
  if (window.__headscopeTourStep !== data.step) {
    window.__headscopeTourStep = data.step;
    toTop();
    const app = document.querySelector('[data-testid="stApp"]');
    const drawn = new MutationObserver(() => {
      if (app.getAttribute("data-test-script-state") !== "notRunning") return;
      drawn.disconnect();
      if (window.__headscopeTourStep === data.step) toTop();
    });
    if (app) drawn.observe(app, { attributes: true, attributeFilter: ["data-test-script-state"] });
  }
  let button = parentElement.querySelector("button.tour-figure");
  if (!data.figure) {
    button?.remove();
    return;
  }
  if (!button) {
    button = document.createElement("button");
    button.className = "tour-figure";
    parentElement.appendChild(button);
  }
  button.classList.toggle("present", data.present); // the presenter layout's CSS does not reach in here
  button.textContent = `↓ Show the figure: ${data.figure}`;
  button.onclick = () => toFigure(data.figure);
}
