/* tables review: keyboard-first queue and match view. No library, no network beyond this server.
   User text is only ever set through textContent or SVG attributes, never as HTML. */
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const GAP = 40;  // px of page A between the two pages on the stage

function typing(event) {
  const tag = event.target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
}

function svg(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  parent.appendChild(element);
  return element;
}

/* ---- queue page: j/k select a row, Enter opens it ---- */
function setUpQueue() {
  const rows = Array.from(document.querySelectorAll("#queue tbody tr"));
  let selected = -1;
  function select(index) {
    if (!rows.length) return;
    if (selected >= 0) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", (event) => {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j" || event.key === "ArrowDown") select(selected + 1);
    else if (event.key === "k" || event.key === "ArrowUp") select(selected - 1);
    else if ((event.key === "Enter" || event.key === "o") && rows.length) {
      window.location.href = rows[Math.max(selected, 0)].dataset.url;
    } else return;
    event.preventDefault();
  });
  select(0);
}

/* ---- match view ---- */
function loadImage(url) {
  return new Promise((resolve) => {
    if (!url) { resolve(null); return; }
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => resolve(null);
    image.src = url;
  });
}

class Stage {
  /* Both pages side by side in one SVG (page px of A; B scaled to A's height), the links'
     boxes and lines over them; zoom and pan change the viewBox. */
  constructor(data, images) {
    this.element = document.getElementById("stage");
    const size = (page, image) => [page.width || (image ? image.naturalWidth : 1000),
                                   page.height || (image ? image.naturalHeight : 1400)];
    const [wa, ha] = size(data.a, images[0]);
    const [wb, hb] = size(data.b, images[1]);
    this.scaleB = ha / hb;
    this.offsetB = wa + GAP;
    this.full = [0, 0, wa + GAP + wb * this.scaleB, ha];
    const pages = document.getElementById("pages");
    const place = [[data.a, 0, 1, wa, ha], [data.b, this.offsetB, this.scaleB, wb, hb]];
    for (const [page, x, scale, w, h] of place) {
      svg("rect", {x, y: 0, width: w * scale, height: h * scale, class: "paper"}, pages);
      if (page.image) {
        svg("image", {href: page.image, x, y: 0, width: w * scale, height: h * scale,
                      preserveAspectRatio: "none"}, pages);
      }
    }
    this.view = this.full.slice();
    this.apply();
    this.listen();
  }

  boxA(box) { return box; }
  boxB(box) {
    return [this.offsetB + box[0] * this.scaleB, box[1] * this.scaleB,
            this.offsetB + box[2] * this.scaleB, box[3] * this.scaleB];
  }

  apply() { this.element.setAttribute("viewBox", this.view.join(" ")); }

  zoom(factor, cx, cy) {
    const [x, y, w, h] = this.view;
    cx = cx === undefined ? x + w / 2 : cx;
    cy = cy === undefined ? y + h / 2 : cy;
    const nw = Math.min(Math.max(w * factor, this.full[2] / 200), this.full[2] * 4);
    const f = nw / w;
    this.view = [cx - (cx - x) * f, cy - (cy - y) * f, w * f, h * f];
    this.apply();
  }

  fit() { this.view = this.full.slice(); this.apply(); }

  toStage(event) {
    const rect = this.element.getBoundingClientRect();
    const [x, y, w, h] = this.view;
    const scale = Math.max(w / rect.width, h / rect.height);
    const ox = x + (w - rect.width * scale) / 2, oy = y + (h - rect.height * scale) / 2;
    return [ox + (event.clientX - rect.left) * scale, oy + (event.clientY - rect.top) * scale,
            scale];
  }

  listen() {
    this.element.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [cx, cy] = this.toStage(event);
      this.zoom(event.deltaY > 0 ? 1.2 : 1 / 1.2, cx, cy);
    }, {passive: false});
    let drag = null;
    this.element.addEventListener("pointerdown", (event) => {
      drag = [event.clientX, event.clientY, this.view.slice(), this.toStage(event)[2]];
      this.element.setPointerCapture(event.pointerId);
    });
    this.element.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const [sx, sy, view, scale] = drag;
      this.view = [view[0] - (event.clientX - sx) * scale, view[1] - (event.clientY - sy) * scale,
                   view[2], view[3]];
      this.apply();
    });
    this.element.addEventListener("pointerup", () => { drag = null; });
  }
}

function drawLinks(stage, links) {
  const boxes = document.getElementById("boxes");
  const lines = document.getElementById("links");
  const list = document.getElementById("link-list");
  const strongest = Math.max(...links.map((link) => Math.abs(link.relevance)), 1e-12);
  links.forEach((link, index) => {
    const a = stage.boxA(link.box_a), b = stage.boxB(link.box_b);
    const group = [
      svg("rect", {x: a[0], y: a[1], width: a[2] - a[0], height: a[3] - a[1], class: "box"},
          boxes),
      svg("rect", {x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1], class: "box"},
          boxes),
      svg("line", {x1: (a[0] + a[2]) / 2, y1: (a[1] + a[3]) / 2, x2: (b[0] + b[2]) / 2,
                   y2: (b[1] + b[3]) / 2, class: "link",
                   "stroke-width": 1 + 5 * Math.abs(link.relevance) / strongest}, lines),
    ];
    const item = document.createElement("li");
    item.textContent = `${link.digits_a} ↔ ${link.digits_b}  (${link.relevance.toFixed(4)})`;
    item.dataset.index = index;
    list.appendChild(item);
    const on = () => { group.forEach((e) => e.classList.add("active")); item.classList.add("active"); };
    const off = () => { group.forEach((e) => e.classList.remove("active")); item.classList.remove("active"); };
    for (const element of [...group, item]) {
      element.addEventListener("mouseenter", on);
      element.addEventListener("mouseleave", off);
    }
  });
  if (!links.length) {
    const item = document.createElement("li");
    item.textContent = "no explanation for this pair";
    list.appendChild(item);
  }
}

function drawVariants(stage, variants) {
  /* The cells the two pages print differently: boxes on both pages, lit from their table row. */
  const boxes = document.getElementById("boxes");
  const rows = document.querySelectorAll("#variants tbody tr");
  variants.forEach((variant, index) => {
    const drawn = [];
    for (const [box, place] of [[variant.box_a, (b) => stage.boxA(b)],
                                [variant.box_b, (b) => stage.boxB(b)]]) {
      if (!Array.isArray(box) || box.length !== 4) continue;
      const [x0, y0, x1, y1] = place(box);
      drawn.push(svg("rect", {x: x0, y: y0, width: x1 - x0, height: y1 - y0,
                              class: "variant"}, boxes));
    }
    const row = rows[index];
    if (!row) return;
    row.addEventListener("mouseenter", () => drawn.forEach((e) => e.classList.add("active")));
    row.addEventListener("mouseleave", () => drawn.forEach((e) => e.classList.remove("active")));
  });
}

function showHistory(entry) {
  const list = document.getElementById("history");
  const item = document.createElement("li");
  item.textContent = `${entry.time} · ${entry.user} · ${entry.label}` +
    (entry.note ? ` · “${entry.note}”` : "");
  list.insertBefore(item, list.firstChild);
  document.getElementById("history-box").open = true;
}

function setUpMatch() {
  const data = JSON.parse(document.getElementById("match-data").textContent);
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  const note = document.getElementById("note");
  const badge = document.getElementById("verdict");
  const flash = sessionStorage.getItem("review-flash");
  if (flash) { status.textContent = flash; sessionStorage.removeItem("review-flash"); }
  Promise.all([loadImage(data.a.image), loadImage(data.b.image)]).then((images) => {
    const stage = new Stage(data, images);
    drawLinks(stage, data.explanation.links);
    drawVariants(stage, data.explanation.variants);
    window.reviewStage = stage;
  });
  let saving = false;
  async function give(code) {
    if (saving) return;
    saving = true;
    status.textContent = "saving…";
    status.className = "";
    try {
      const response = await fetch(data.save, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
        body: JSON.stringify({page_a: data.page_a, page_b: data.page_b, verdict: code,
                              note: note.value}),
      });
      const answer = await response.json();
      if (!response.ok || !answer.saved) throw new Error(answer.error || response.statusText);
      badge.textContent = answer.label;
      badge.className = `badge ${answer.verdict}`;
      status.textContent = `saved: ${answer.label}`;
      status.className = "saved";
      showHistory(answer);
      if (data.next) {
        sessionStorage.setItem("review-flash",
          `saved: ${answer.label} for ${data.page_a} / ${data.page_b}`);
        window.location.href = data.next;
      }
    } catch (error) {
      status.textContent = `not saved: ${error.message}`;
      status.className = "failed";
    } finally {
      saving = false;
    }
  }
  const codes = Array.from(document.querySelectorAll("#choices button"));
  codes.forEach((button) => button.addEventListener("click", () => give(button.dataset.verdict)));
  note.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { note.blur(); event.preventDefault(); }
  });
  const go = (id) => { const link = document.getElementById(id); if (link) link.click(); };
  document.addEventListener("keydown", (event) => {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    const stage = window.reviewStage;
    const number = Number.parseInt(event.key, 10);
    if (number >= 1 && number <= codes.length) give(codes[number - 1].dataset.verdict);
    else if (event.key === "n" || event.key === "j") go("next");
    else if (event.key === "p" || event.key === "k") go("previous");
    else if (event.key === "q" || event.key === "u") go("back");
    else if (event.key === "e") note.focus();
    else if (event.key === "l") {
      for (const id of ["links", "boxes"]) document.getElementById(id).classList.toggle("hidden");
    }
    else if (stage && (event.key === "+" || event.key === "=")) stage.zoom(1 / 1.25);
    else if (stage && event.key === "-") stage.zoom(1.25);
    else if (stage && event.key === "0") stage.fit();
    else return;
    event.preventDefault();
  });
}

if (document.getElementById("match-data")) setUpMatch();
else if (document.getElementById("queue")) setUpQueue();
