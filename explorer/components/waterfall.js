// The trace waterfall as one <canvas>, for explorer/components/waterfall.py (st.components.v2).
//
// Why a canvas and not plotly: in a fresh browser tab plotly's bundle alone costs ~0.9 s before the first
// bar; this file is a few kB and draws only the rows in view, so a 10,000-span trace costs what a 4-span
// one does. Rows scroll natively (a sticky canvas over a spacer as tall as every row); drag across the
// bars to zoom into a time range, double-click to zoom out; click a row to select its span (sent to
// Python as the "picked" trigger); hover for the span's name, service, offset, duration and status.

const AXIS_PX = 22;
const DURATION_PX = 64;
const FONT = '12px "Source Sans Pro", "Source Sans 3", system-ui, sans-serif';
const SMALL_FONT = '10px "Source Sans Pro", "Source Sans 3", system-ui, sans-serif';

function formatMs(ms) {
  const size = Math.abs(ms);
  const sig = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2))
    .replace(/\.0+$/, "").replace(/(\.\d*[1-9])0+$/, "$1");
  if (size === 0) return "0 ms";
  if (size < 1) return `${sig(ms * 1000)} µs`;
  if (size < 1000) return `${sig(ms)} ms`;
  if (size < 60000) return `${sig(ms / 1000)} s`;
  return `${sig(ms / 60000)} min`;
}

function niceStep(range, target) {
  const raw = range / Math.max(target, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function createView(parent) {
  const root = document.createElement("div");
  root.style.cssText = "position:relative;font:" + FONT + ";color:#31333f;user-select:none";
  const legend = document.createElement("div");
  legend.style.cssText = "display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 4px 0;font-size:12px;align-items:center";
  const scroll = document.createElement("div");
  scroll.style.cssText = "position:relative;overflow-y:auto;overflow-x:hidden;border:1px solid #e6e6ea;border-radius:4px";
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "position:sticky;top:0;display:block;cursor:pointer";
  canvas.setAttribute("data-testid", "waterfall-canvas");
  const spacer = document.createElement("div");
  const tip = document.createElement("div");
  tip.style.cssText = "position:absolute;pointer-events:none;display:none;background:#fff;border:1px solid #bbb;" +
    "border-radius:4px;padding:3px 6px;font-size:12px;box-shadow:0 1px 4px rgba(0,0,0,.15);white-space:nowrap;z-index:2";
  scroll.append(canvas, spacer);
  root.append(legend, scroll, tip);
  parent.appendChild(root);

  const view = {
    data: null, marksByRow: new Map(), range: null, hover: -1, drag: null, selected: -1, trace: null,
    setTrigger: null, pending: false, draws: 0,
  };

  const size = () => {
    const d = view.data;
    return { width: scroll.clientWidth, height: AXIS_PX + d.visible * d.row_px };
  };
  const geometry = () => {
    const { width } = size();
    const labelW = Math.round(Math.min(380, Math.max(160, width * 0.32)));
    const x0 = labelW + 8;
    const plotW = Math.max(50, width - x0 - DURATION_PX);
    const [lo, hi] = view.range;
    return { width, labelW, x0, plotW, lo, hi, px: (ms) => x0 + ((ms - lo) / (hi - lo)) * plotW };
  };
  const rowAt = (clientY) => {
    const box = canvas.getBoundingClientRect();
    const y = clientY - box.top - AXIS_PX;
    if (y < 0) return -1;
    const row = Math.floor((y + scroll.scrollTop) / view.data.row_px);
    return row >= 0 && row < view.data.rows ? row : -1;
  };

  function draw() {
    view.pending = false;
    const d = view.data;
    if (!d) return;
    const { width, height } = size();
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      canvas.style.width = width + "px";
      canvas.style.height = height + "px";
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const geo = geometry();
    const rowPx = d.row_px, barPx = d.bar_px;
    const top = scroll.scrollTop;
    const first = Math.max(0, Math.floor(top / rowPx));
    const last = Math.min(d.rows, first + d.visible + 2);
    const yOf = (row) => AXIS_PX + row * rowPx - top;

    // Grid lines at the axis ticks, behind the bars.
    const step = niceStep(geo.hi - geo.lo, geo.plotW / 110);
    const ticks = [];
    for (let t = Math.ceil(geo.lo / step) * step; t <= geo.hi; t += step) ticks.push(t);
    g.strokeStyle = "#eeeef2";
    g.lineWidth = 1;
    for (const t of ticks) {
      const x = Math.round(geo.px(t)) + 0.5;
      g.beginPath(); g.moveTo(x, AXIS_PX); g.lineTo(x, height); g.stroke();
    }
    for (const [row, fill] of [[view.hover, "rgba(0,0,0,0.04)"], [view.selected, d.selected_fill]]) {
      if (row >= first && row < last) {
        g.fillStyle = fill;
        g.fillRect(0, yOf(row), width, rowPx);
        if (row === view.selected) {
          g.strokeStyle = "#b38600"; g.lineWidth = 1;
          g.strokeRect(0.5, yOf(row) + 0.5, width - 1, rowPx - 1);
        }
      }
    }
    g.save();
    g.beginPath(); g.rect(0, AXIS_PX, width, height - AXIS_PX); g.clip();
    g.textBaseline = "middle";
    for (let i = first; i < last; i++) {
      const mid = yOf(i) + rowPx / 2;
      g.font = FONT;
      g.fillStyle = d.error[i] ? d.error_color : "#31333f";
      g.save();
      g.beginPath(); g.rect(0, yOf(i), geo.labelW, rowPx); g.clip();
      g.fillText(d.label[i], 4, mid);
      g.restore();
      const start = d.offset[i], end = start + d.duration[i];
      if (end < geo.lo || start > geo.hi) continue;
      const xa = Math.max(geo.px(start), geo.x0 - 2);
      const xb = Math.min(geo.px(end), geo.x0 + geo.plotW + 2);
      const w = Math.max(2, xb - xa);
      g.fillStyle = d.colors[d.service[i]];
      g.fillRect(xa, mid - barPx / 2, w, barPx);
      if (d.critical[i]) {
        g.fillStyle = d.critical_color;
        g.fillRect(xa, mid - 1, w, 2);
      }
      if (d.error[i]) {
        g.strokeStyle = d.error_color; g.lineWidth = 2;
        g.beginPath();
        g.moveTo(xa - 4, mid - 4); g.lineTo(xa + 4, mid + 4);
        g.moveTo(xa - 4, mid + 4); g.lineTo(xa + 4, mid - 4);
        g.stroke();
      }
      for (const m of view.marksByRow.get(i) || []) {
        const x = geo.px(d.marks.offset[m]);
        if (x < geo.x0 || x > geo.x0 + geo.plotW) continue;
        const y = mid - barPx / 2 - 1;
        g.fillStyle = d.marks.color[m];
        g.beginPath();
        if (d.marks.kind[m] === "log") { g.moveTo(x - 4, y - 4); g.lineTo(x + 4, y - 4); g.lineTo(x, y + 2); }
        else { g.moveTo(x, y - 5); g.lineTo(x + 3.5, y - 1.5); g.lineTo(x, y + 2); g.lineTo(x - 3.5, y - 1.5); }
        g.closePath(); g.fill();
      }
      g.font = SMALL_FONT;
      g.fillStyle = "#444";
      g.fillText(d.duration_text[i], Math.min(xa + w + 4, geo.x0 + geo.plotW + 4), mid);
    }
    g.restore();
    if (view.drag && Math.abs(view.drag.x1 - view.drag.x0) > 4) {
      g.fillStyle = "rgba(76,120,168,0.15)";
      g.fillRect(Math.min(view.drag.x0, view.drag.x1), AXIS_PX, Math.abs(view.drag.x1 - view.drag.x0), height - AXIS_PX);
    }
    // The time axis on top, over the scrolled rows.
    g.fillStyle = "#fafafc";
    g.fillRect(0, 0, width, AXIS_PX);
    g.strokeStyle = "#d0d0d8"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(0, AXIS_PX - 0.5); g.lineTo(width, AXIS_PX - 0.5); g.stroke();
    g.font = SMALL_FONT; g.fillStyle = "#555"; g.textBaseline = "middle"; g.textAlign = "center";
    for (const t of ticks) g.fillText(formatMs(t), geo.px(t), AXIS_PX / 2);
    g.textAlign = "left";
    g.fillText(`rows ${first + 1}–${Math.min(d.rows, first + d.visible)} of ${d.rows.toLocaleString("en")}`, 4, AXIS_PX / 2);
    g.textAlign = "start";
    view.draws += 1;
    canvas.dataset.rows = String(d.rows);
    canvas.dataset.selected = view.selected >= 0 ? d.span_id[view.selected] : "";
    canvas.dataset.firstRow = String(first);
    canvas.dataset.drawn = String(view.draws);
  }
  const redraw = () => {
    if (!view.pending) { view.pending = true; requestAnimationFrame(draw); }
  };

  function showTip(row, clientX, clientY) {
    const d = view.data;
    if (row < 0) { tip.style.display = "none"; return; }
    tip.textContent = "";
    const head = document.createElement("b");
    head.textContent = d.name[row];
    tip.append(head, ` · ${d.services[d.service[row]]}`, document.createElement("br"),
      `+${d.offset[row].toFixed(3)} ms, ${d.duration_text[row]} · ${d.status[row]}`);
    const box = root.getBoundingClientRect();
    tip.style.display = "block";
    const x = Math.min(clientX - box.left + 12, box.width - tip.offsetWidth - 4);
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = (clientY - box.top + 14) + "px";
  }

  function pick(row) {
    if (row < 0 || !view.setTrigger) return;
    view.selected = row;
    redraw();
    view.setTrigger("picked", view.data.span_id[row]);
  }

  scroll.addEventListener("scroll", () => { tip.style.display = "none"; redraw(); }, { passive: true });
  canvas.addEventListener("mousedown", (e) => {
    const x = e.clientX - canvas.getBoundingClientRect().left;
    view.drag = { x0: x, x1: x, row: rowAt(e.clientY), inPlot: x > geometry().x0 };
  });
  canvas.addEventListener("mousemove", (e) => {
    if (view.drag) {
      view.drag.x1 = e.clientX - canvas.getBoundingClientRect().left;
      redraw();
      return;
    }
    const row = rowAt(e.clientY);
    if (row !== view.hover) { view.hover = row; redraw(); }
    showTip(row, e.clientX, e.clientY);
  });
  canvas.addEventListener("mouseleave", () => { view.hover = -1; view.drag = null; tip.style.display = "none"; redraw(); });
  canvas.addEventListener("mouseup", (e) => {
    const drag = view.drag;
    view.drag = null;
    if (drag && drag.inPlot && Math.abs(drag.x1 - drag.x0) > 4) {
      const geo = geometry();
      const ms = (x) => geo.lo + ((x - geo.x0) / geo.plotW) * (geo.hi - geo.lo);
      const a = ms(Math.min(drag.x0, drag.x1)), b = ms(Math.max(drag.x0, drag.x1));
      if (b - a > 1e-9) view.range = [a, b];
      redraw();
    } else {
      pick(rowAt(e.clientY));
    }
  });
  canvas.addEventListener("dblclick", () => { view.range = fullRange(view.data); redraw(); });
  new ResizeObserver(redraw).observe(scroll);

  const fullRange = (d) => [-d.total * 0.01, d.total * 1.02];

  view.update = (d) => {
    const trace = d.rows ? `${d.rows}:${d.span_id[0]}:${d.span_id[d.rows - 1]}` : "";
    const newTrace = trace !== view.trace;
    view.data = d;
    view.trace = trace;
    if (newTrace || !view.range) view.range = fullRange(d);
    view.marksByRow = new Map();
    d.marks.row.forEach((row, m) => {
      if (!view.marksByRow.has(row)) view.marksByRow.set(row, []);
      view.marksByRow.get(row).push(m);
    });
    const height = AXIS_PX + d.visible * d.row_px;
    scroll.style.height = height + 2 + "px";
    spacer.style.height = Math.max(0, d.rows * d.row_px - d.visible * d.row_px) + "px";
    legend.textContent = "";
    d.services.forEach((name, i) => {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.style.cssText = `display:inline-block;width:14px;height:9px;margin-right:4px;border-radius:2px;background:${d.colors[i]}`;
      item.append(swatch, name);
      legend.appendChild(item);
    });
    const keyText = document.createElement("span");
    keyText.style.color = "#666";
    keyText.textContent = "✕ error · ◆ event · ▼ log · black line = critical path";
    legend.appendChild(keyText);
    const moved = d.selected !== view.selected || newTrace;
    view.selected = d.selected;
    if (newTrace) scroll.scrollTop = 0;
    if (moved && d.selected >= 0) {
      const first = scroll.scrollTop / d.row_px;
      if (d.selected < first || d.selected >= first + d.visible - 1) {
        scroll.scrollTop = Math.max(0, (d.selected - Math.floor(d.visible / 2)) * d.row_px);
      }
    }
    draw();
  };
  // For the browser tests and bench/browser.py: where a row is on the page (scrolled into view first).
  view.rowPoint = (row) => {
    const d = view.data;
    const first = scroll.scrollTop / d.row_px;
    if (row < first || row >= first + d.visible - 1) {
      scroll.scrollTop = Math.max(0, (row - Math.floor(d.visible / 2)) * d.row_px);
      draw();
    }
    canvas.scrollIntoView({ block: "nearest" });  // the page itself may have to scroll to show the chart
    const box = canvas.getBoundingClientRect(), geo = geometry();
    return [box.left + geo.x0 + geo.plotW / 2, box.top + AXIS_PX + row * d.row_px - scroll.scrollTop + d.row_px / 2];
  };
  view.canvas = canvas;
  return view;
}

export default function (component) {
  const { parentElement, data, setTriggerValue } = component;
  let view = parentElement.__langswarmWaterfall;
  if (!view) {
    view = createView(parentElement);
    parentElement.__langswarmWaterfall = view;
  }
  view.setTrigger = setTriggerValue;
  window.__langswarmWaterfall = view;
  if (data) view.update(data);
}
