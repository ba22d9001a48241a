// The cell picker (ui/cell_picker.py): a picture of rows x cols cells (heads, or an image's patches) with row and
// column labels, an optional colour scale, a hover tip per cell and a red outline on the selected cell. A click on
// a pickable grid outlines the cell at once and sends its [row, col] as the trigger value "pick". The element stays
// mounted while the data changes: a new picture swaps the image, a new selection only moves the outline. A picture
// the page already got comes as its id only (keep() below). With a name, a "PNG" link (shown on hover, as plotly's
// camera) downloads the picture.
export default function ({ parentElement, data, setTriggerValue }) {
  let root = parentElement.querySelector(".cp");
  if (!root) {
    root = document.createElement("div");
    root.className = "cp";
    parentElement.appendChild(root);
  }
  root.send = setTriggerValue;
  root.latest = data;
  const { selected, picture, ...drawn } = data;
  const show = () => {
    const uri = keep(drawn.picture_id, picture);
    if (!uri) return false;
    const layout = JSON.stringify(drawn); // the picture by its id: a long data URI is not compared on every update
    if (root.layout !== layout) {
      build(root, { ...drawn, picture: uri });
      root.layout = layout;
    }
    outline(root, selected);
    return true;
  };
  if (show()) return;
  // sent as its id but not kept here: another picker of this run may be about to keep it (the server sends a
  // picture whole to the first picker that shows it); failing that (say, the page was loaded again), ask once for
  // the picture itself
  requestAnimationFrame(() => {
    if (root.latest !== data || show() || root.asked === drawn.picture_id) return;
    root.asked = drawn.picture_id;
    setTriggerValue("missing", drawn.picture_id);
  });
}

// The pictures this page got, by id, most recently used last: ui/cell_picker.py sends a picture it sent lately as
// its id only. KEPT is twice the pictures the server counts on (its PICTURES_SENT), in the same order.
const KEPT = 32;
const PICTURES = (window.__headscopePictures ??= new Map());

// Keep `picture` (a data URI, or null when sent as its id) under `id`; returns it, or null when not kept.
function keep(id, picture) {
  const uri = picture ?? PICTURES.get(id) ?? null;
  if (uri === null) return null;
  PICTURES.delete(id);
  PICTURES.set(id, uri);
  while (PICTURES.size > KEPT) PICTURES.delete(PICTURES.keys().next().value);
  return uri;
}

function el(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function pct(v) {
  return `${v}%`;
}

function build(root, d) {
  root.replaceChildren();
  root.style.fontSize = `${d.font}px`;
  const step = d.cell + d.gap;
  const W = d.cols * step - d.gap;
  const H = d.rows * step - d.gap;
  const box = (r, c) => ({
    left: pct((100 * c * step) / W),
    top: pct((100 * r * step) / H),
    width: pct((100 * d.cell) / W),
    height: pct((100 * d.cell) / H),
  });
  if (d.title) el("div", "title", root, d.title);
  const frame = el("div", "frame", root);
  if (d.max_width) frame.style.maxWidth = `${d.max_width}px`;
  el("div", "rowtitle", frame, d.row_title);
  const top = el("div", d.tilted ? "collabels tilted" : "collabels", frame);
  if (d.tilted) {
    const longest = Math.max(0, ...d.col_labels.map((t) => t.length));
    top.style.height = `${0.36 * longest + 1}em`; // slanted at 45 degrees, a label rises 0.7 of its ~0.5 em a letter
  }
  const left = el("div", "rowlabels", frame);
  const plot = el("div", d.pickable ? "plot pickable" : "plot", frame);
  if (d.height) plot.style.height = `${d.height}px`;
  else plot.style.aspectRatio = `${W} / ${H}`;
  d.col_labels.forEach((t, c) => {
    const b = box(0, c);
    const s = el("span", "", top, t);
    s.style.left = pct(parseFloat(b.left) + parseFloat(b.width) / 2);
  });
  d.row_labels.forEach((t, r) => {
    const b = box(r, 0);
    const s = el("span", "", left, t);
    s.style.top = pct(parseFloat(b.top) + parseFloat(b.height) / 2);
  });
  const img = el("img", d.smooth ? "pic" : "pic pixelated", plot);
  img.src = d.picture;
  img.alt = d.title || "cells";
  img.draggable = false;
  root.rowBox = (r) => box(r, 0);
  root.rowOutline = el("div", "rowsel", plot);
  const tip = el("div", "tip", root);
  root.cells = [];
  for (let r = 0; r < d.rows; r++) {
    for (let c = 0; c < d.cols; c++) {
      const cell = el("div", d.ruled ? "cell ruled" : "cell", plot);
      Object.assign(cell.style, box(r, c));
      const i = r * d.cols + c;
      const text = d.tips[i];
      if (d.texts[i]) {
        const word = el("span", "celltext", cell, d.texts[i]);
        word.style.color = d.text_colours[i];
      }
      cell.onmousemove = (e) => {
        if (!text) return;
        tip.textContent = text;
        tip.style.display = "block";
        const rb = root.getBoundingClientRect();
        tip.style.left = `${e.clientX - rb.left + 12}px`;
        tip.style.top = `${e.clientY - rb.top + 12}px`;
      };
      cell.onmouseleave = () => {
        tip.style.display = "none";
      };
      if (d.pickable) {
        cell.onclick = () => {
          outline(root, [r, c]);
          root.send("pick", [r, c]);
        };
      }
      root.cells.push(cell);
    }
  }
  root.cols = d.cols;
  if (d.scale) {
    const scale = el("div", "scale", frame);
    el("div", "max", scale, d.scale.max);
    const bar = el("div", "bar", scale);
    bar.style.background = `linear-gradient(to top, ${d.scale.colours.join(", ")})`;
    el("div", "min", scale, d.scale.min);
    if (d.scale.title) el("div", "scaletitle", scale, d.scale.title);
  }
  if (d.col_title) {
    el("div", "coltitle", frame, d.col_title);
  }
  if (d.name) {
    const save = el("a", "save", root, "⤓ PNG");
    save.title = "Download the picture as PNG (as drawn, twice its size on screen)";
    save.onclick = (e) => {
      e.preventDefault();
      savePicture(img, plot, d, `${d.name}.png`);
    };
  }
}

// The picture as drawn (scaled to twice its size on screen, in blocks unless smooth, with the cells' words) as a
// PNG download.
function savePicture(img, plot, d, filename) {
  const canvas = document.createElement("canvas");
  canvas.width = 2 * plot.clientWidth;
  canvas.height = 2 * plot.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = d.smooth;
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const w = canvas.width / d.cols;
  const h = canvas.height / d.rows;
  ctx.font = `${2 * d.font}px "Source Sans", sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  d.texts.forEach((t, i) => {
    ctx.fillStyle = d.text_colours[i];
    ctx.fillText(t, (i % d.cols) * w + w / 2, Math.floor(i / d.cols) * h + h / 2, w - 4);
  });
  const a = document.createElement("a");
  a.href = canvas.toDataURL("image/png");
  a.download = filename;
  a.click();
}

// Outline the selected [row, col], or the whole row when col is null.
function outline(root, selected) {
  const old = root.querySelector(".cell.sel");
  if (old) old.classList.remove("sel");
  root.rowOutline.style.display = "none";
  if (!selected) return;
  if (selected[1] === null) {
    const b = root.rowBox(selected[0]);
    Object.assign(root.rowOutline.style, { display: "block", top: b.top, height: b.height });
    return;
  }
  const cell = root.cells[selected[0] * root.cols + selected[1]];
  if (cell) cell.classList.add("sel");
}
