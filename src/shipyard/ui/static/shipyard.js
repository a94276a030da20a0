/* Shipyard web UI: uPlot charts, live run updates, the runs-table selection, image galleries,
 * the diff toggle and the parallel-coordinates plot. No framework; htmx swaps server fragments
 * and `htmx.onLoad` (re)initialises whatever it brings in. */
(function () {
  "use strict";

  const MAX_POINTS = 2000; // the server downsamples (min/max per bucket) to this many points
  const CHART_HEIGHT = 240;
  const settings = { smoothing: 0, x: "step" };
  const cache = new Map(); // "run key" -> {step, time, value}
  const charts = new Set(); // chart states of the page, created lazily when scrolled into view
  let firstDraw = true;

  // -- data -------------------------------------------------------------------------------

  function finite(v) {
    return typeof v === "number" && isFinite(v) ? v : null; // "NaN", "Infinity" -> a gap
  }

  async function history(run, key, fresh) {
    const id = run + "\u0000" + key;
    if (!fresh && cache.has(id)) return cache.get(id);
    const url = "/runs/" + encodeURIComponent(run) + "/history?key=" + encodeURIComponent(key) +
      "&max_points=" + MAX_POINTS;
    const r = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
    if (r.status === 401) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("signed out");
    }
    if (!r.ok) throw new Error("HTTP " + r.status + " for " + key);
    const h = await r.json();
    const data = { step: h.step, time: h.timestamp, value: h.value.map(finite), total: h.total };
    cache.set(id, data);
    return data;
  }

  function smooth(ys, w) {
    // Exponential moving average, debiased like TensorBoard's (no pull towards 0 at the start).
    if (w <= 0) return ys;
    const out = new Array(ys.length);
    let last = 0;
    let n = 0;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y === null) { out[i] = null; continue; }
      last = last * w + (1 - w) * y;
      n += 1;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }

  function xValues(d) {
    if (settings.x === "time") return d.time;
    if (settings.x === "relative") {
      const t0 = d.time.length ? d.time[0] : 0;
      return d.time.map((t) => t - t0);
    }
    return d.step;
  }

  function sortedTable(xs, columns) {
    // uPlot wants x ascending; a resumed run may log steps out of order.
    let ordered = true;
    for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) { ordered = false; break; }
    if (ordered) return [xs, ...columns];
    const idx = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    return [idx.map((i) => xs[i]), ...columns.map((c) => idx.map((i) => c[i]))];
  }

  function chartData(specs, datas) {
    const tables = datas.map((d) => {
      const cols = [d.value];
      if (settings.smoothing > 0) cols.push(smooth(d.value, settings.smoothing));
      return sortedTable(xValues(d), cols);
    });
    return tables.length === 1 ? tables[0] : uPlot.join(tables);
  }

  // -- charts -----------------------------------------------------------------------------

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function seriesOptions(specs) {
    const out = [{ label: { step: "step", time: "time", relative: "seconds" }[settings.x] }];
    for (const s of specs) {
      const smoothed = settings.smoothing > 0;
      out.push({
        label: smoothed ? s.label + " (raw)" : s.label,
        stroke: smoothed ? s.color + "55" : s.color,
        width: smoothed ? 1 : 1.5,
        spanGaps: true,
        points: { show: false },
      });
      if (smoothed) {
        out.push({ label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: false } });
      }
    }
    return out;
  }

  function markDrawn(state) {
    state.el.dataset.drawn = "1";
    if (firstDraw) {
      firstDraw = false;
      performance.mark("shipyard:chart-drawn");
    }
  }

  function build(state) {
    if (state.u) state.u.destroy();
    state.el.replaceChildren();
    const fg = cssVar("--fg");
    const grid = cssVar("--grid");
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts = {
      width: Math.max(200, state.el.clientWidth || 400),
      height: CHART_HEIGHT,
      scales: { x: { time: settings.x === "time" } },
      axes: [Object.assign({}, axis), Object.assign({ size: 64 }, axis)],
      series: seriesOptions(state.specs),
      cursor: { sync: { key: "shipyard" }, drag: { x: true, y: false } },
      legend: { live: true },
      hooks: { draw: [() => markDrawn(state)] },
    };
    state.u = new uPlot(opts, chartData(state.specs, state.datas), state.el);
  }

  function message(state, text) {
    const p = document.createElement("p");
    p.className = "chart-message";
    p.textContent = text;
    state.el.replaceChildren(p);
  }

  async function load(state, fresh) {
    try {
      state.datas = await Promise.all(state.specs.map((s) => history(s.run, s.key, fresh)));
    } catch (err) {
      if (!state.u) message(state, "No data: " + err.message);
      return;
    }
    if (state.u && state.u.series.length === seriesOptions(state.specs).length && fresh) {
      state.u.setData(chartData(state.specs, state.datas));
    } else {
      build(state);
    }
  }

  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        observer.unobserve(e.target);
        const state = e.target._chart;
        if (state && !state.started) { state.started = true; load(state, false); }
      }
    }, { rootMargin: "300px" })
    : null;

  function initChart(el) {
    if (el._chart) return;
    const state = { el: el, specs: JSON.parse(el.dataset.series), datas: null, u: null, started: false };
    el._chart = state;
    charts.add(state);
    const near = el.getBoundingClientRect().top < window.innerHeight + 300;
    if (observer && !near) observer.observe(el); // charts further down load when scrolled to
    else { state.started = true; load(state, false); }
  }

  function rebuildAll() {
    for (const state of charts) if (state.datas) build(state);
    for (const box of trafficBoxes) if (box._data) drawTraffic(box, true);
  }

  function refreshRun(run) {
    for (const state of charts) {
      if (state.started && state.specs.some((s) => s.run === run)) load(state, true);
    }
  }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const state of charts) {
        if (state.u) state.u.setSize({ width: Math.max(200, state.el.clientWidth), height: CHART_HEIGHT });
      }
      for (const svg of document.querySelectorAll("svg.parcoords")) drawParcoords(svg);
      for (const el of document.querySelectorAll(".traffic-chart")) {
        if (el._u) el._u.setSize({ width: Math.max(200, el.clientWidth), height: TRAFFIC_HEIGHT });
      }
    }, 150);
  });
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuildAll);
  }

  function initControls(root) {
    for (const input of root.querySelectorAll("[data-smoothing]:not([data-bound])")) {
      input.dataset.bound = "1";
      const out = input.parentElement.querySelector("[data-smoothing-value]");
      input.addEventListener("input", () => {
        settings.smoothing = Number(input.value);
        if (out) out.value = input.value;
        rebuildAll();
      });
    }
    for (const select of root.querySelectorAll("[data-xaxis]:not([data-bound])")) {
      select.dataset.bound = "1";
      select.addEventListener("change", () => { settings.x = select.value; rebuildAll(); });
    }
  }

  // -- live updates of a running run --------------------------------------------------------

  function onLive(live) {
    const run = document.querySelector(".run-head")?.dataset.run;
    if (!run) return;
    const keys = JSON.parse(live.dataset.keys || "[]");
    const shown = new Set();
    for (const state of charts) for (const s of state.specs) if (s.run === run) shown.add(s.key);
    const box = document.getElementById("new-charts");
    for (const key of keys) {
      if (shown.has(key) || !box) continue;
      const fig = document.createElement("figure");
      fig.className = "chart-box";
      const cap = document.createElement("figcaption");
      cap.textContent = key;
      const el = document.createElement("div");
      el.className = "chart";
      el.setAttribute("role", "img");
      el.setAttribute("aria-label", "Chart of " + key);
      el.dataset.series = JSON.stringify([{ run: run, key: key, label: key, color: "#4e79a7" }]);
      fig.append(cap, el);
      box.append(fig);
      document.getElementById("no-metrics")?.remove();
      initChart(el);
    }
    if (live._initial) return;
    refreshRun(run);
  }

  // -- runs table: selection for compare ----------------------------------------------------

  function selectionKey() {
    const bar = document.querySelector(".selection-bar");
    return bar ? "shipyard:selected:" + bar.dataset.project : null;
  }

  function selected() {
    const key = selectionKey();
    try {
      return new Set(key ? JSON.parse(sessionStorage.getItem(key) || "[]") : []);
    } catch (_) {
      return new Set();
    }
  }

  function saveSelection(set) {
    const key = selectionKey();
    if (key) sessionStorage.setItem(key, JSON.stringify(Array.from(set)));
    const count = document.getElementById("selected-count");
    if (count) count.textContent = set.size + " selected";
    const button = document.getElementById("compare-button");
    if (button) button.disabled = set.size < 2;
  }

  function syncSelection(root) {
    const set = selected();
    for (const box of root.querySelectorAll(".select-run")) box.checked = set.has(box.value);
    saveSelection(set);
  }

  document.addEventListener("change", (e) => {
    const t = e.target;
    if (!(t instanceof HTMLInputElement)) return;
    if (t.classList.contains("select-run")) {
      const set = selected();
      if (t.checked) set.add(t.value); else set.delete(t.value);
      saveSelection(set);
    } else if (t.hasAttribute("data-select-all")) {
      const set = selected();
      for (const box of document.querySelectorAll(".select-run")) {
        box.checked = t.checked;
        if (t.checked) set.add(box.value); else set.delete(box.value);
      }
      saveSelection(set);
    } else if (t.hasAttribute("data-only-diff")) {
      document.getElementById("diff")?.classList.toggle("only-diff", t.checked);
    }
  });

  document.addEventListener("click", (e) => {
    const t = e.target;
    if (!(t instanceof Element)) return;
    if (t.closest("[data-compare]")) {
      const ids = Array.from(selected());
      if (ids.length) location.assign("/compare?runs=" + ids.map(encodeURIComponent).join(","));
    } else if (t.closest("[data-clear-selection]")) {
      saveSelection(new Set());
      for (const box of document.querySelectorAll(".select-run, [data-select-all]")) box.checked = false;
    }
  });

  // -- image galleries ------------------------------------------------------------------------

  function initGallery(g) {
    if (g._gallery) return;
    g._gallery = true;
    const data = JSON.parse(g.dataset.gallery);
    const slider = g.querySelector("[data-step-slider]");
    const out = g.querySelector("[data-step-value]");
    const frames = g.querySelector(".frames");
    function show() {
      const step = data.steps[Number(slider.value)];
      out.value = String(step);
      const figures = (data.items[String(step)] || []).map((item) => {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        img.src = item.src;
        img.width = Math.max(96, Math.min(320, item.width));
        img.alt = item.caption || g.dataset.key + " at step " + step;
        fig.append(img);
        if (item.caption) {
          const cap = document.createElement("figcaption");
          cap.textContent = item.caption;
          fig.append(cap);
        }
        return fig;
      });
      frames.replaceChildren(...figures);
    }
    slider.addEventListener("input", show);
    show();
  }

  // -- parallel coordinates -------------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function axisScale(axis, top, bottom) {
    // Position of each run's value on the axis (null when it has none), and tick labels.
    if (axis.kind === "num") {
      const nums = axis.values.filter((v) => v !== null);
      const lo = Math.min(...nums);
      const hi = Math.max(...nums);
      const y = (v) => (hi === lo ? (top + bottom) / 2 : bottom - ((v - lo) / (hi - lo)) * (bottom - top));
      return {
        pos: axis.values.map((v) => (v === null ? null : y(v))),
        ticks: hi === lo ? [[lo, y(lo)]] : [[lo, bottom], [hi, top]],
      };
    }
    const cats = Array.from(new Set(axis.values.filter((v) => v !== null)));
    const y = (c) => (cats.length === 1 ? (top + bottom) / 2 : bottom - (cats.indexOf(c) / (cats.length - 1)) * (bottom - top));
    return { pos: axis.values.map((v) => (v === null ? null : y(v))), ticks: cats.map((c) => [c, y(c)]) };
  }

  function label(v) {
    if (typeof v !== "number") return String(v).slice(0, 18);
    return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  function drawParcoords(svg) {
    const source = document.getElementById("parcoords-data");
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const width = Math.max(600, svg.clientWidth || 800);
    const height = 340;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.replaceChildren();
    if (data.axes.length < 2) {
      svg.append(svgEl("text", { x: 20, y: 40 }, "Not enough differing values to draw."));
      return;
    }
    const left = 60;
    const right = 60;
    const top = 40;
    const bottom = height - 30;
    const step = (width - left - right) / (data.axes.length - 1);
    const scales = data.axes.map((a) => axisScale(a, top, bottom));
    data.axes.forEach((axis, i) => {
      const x = left + i * step;
      svg.append(svgEl("line", { class: "axis", x1: x, x2: x, y1: top, y2: bottom }));
      const name = axis.label.length > 24 ? "…" + axis.label.slice(-23) : axis.label;
      svg.append(svgEl("text", { x: x, y: top - 14, "text-anchor": "middle" }, name));
      for (const [value, y] of scales[i].ticks) {
        svg.append(svgEl("text", { class: "tick", x: x + 4, y: y + 4 }, label(value)));
      }
    });
    data.runs.forEach((run, r) => {
      let d = "";
      let pen = "M";
      scales.forEach((s, i) => {
        const y = s.pos[r];
        if (y === null) { pen = "M"; return; }
        d += pen + (left + i * step).toFixed(1) + "," + y.toFixed(1) + " ";
        pen = "L";
      });
      const path = svgEl("path", { class: "line", d: d.trim(), stroke: run.color, "data-run": run.id });
      path.append(svgEl("title", {}, run.name));
      svg.append(path);
    });
    svg.dataset.drawn = "1";
  }

  // -- job logs ---------------------------------------------------------------------------------

  // A running job's output arrives as server-sent events (the API's stream behind the cookie),
  // appended to what the page was rendered with; the stream resumes from the last event id.
  function followLog(pre) {
    if (pre._source || !window.EventSource) return;
    const source = new EventSource(pre.dataset.logStream);
    pre._source = source;
    const stuck = () => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    source.onmessage = (e) => {
      const atEnd = stuck();
      pre.hidden = false;
      pre.append(document.createTextNode(e.data));
      const empty = document.getElementById("job-log-empty");
      if (empty) empty.remove();
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    };
    source.addEventListener("end", () => {
      source.close();
      pre.dataset.logEnded = "1";
    });
  }

  // -- charts of data the page carries (a sweep's trials) ---------------------------------------

  function initInline(el) {
    if (el._u) return;
    const spec = JSON.parse(el.dataset.inline);
    const fg = cssVar("--fg");
    const grid = cssVar("--grid");
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const series = [{ label: "trial" }].concat(spec.series.map((s, i) => ({
      label: s.label,
      stroke: PALETTE_INLINE[i % PALETTE_INLINE.length],
      width: s.points ? 0 : 2,
      spanGaps: true,
      points: s.points ? { show: true, size: 7, fill: PALETTE_INLINE[i % PALETTE_INLINE.length] } : { show: false },
    })));
    const data = [spec.x].concat(spec.series.map((s) => s.values.map(finite)));
    el.replaceChildren();
    el._u = new uPlot({
      width: Math.max(200, el.clientWidth || 400),
      height: CHART_HEIGHT,
      scales: { x: { time: false } },
      axes: [Object.assign({}, axis), Object.assign({ size: 64 }, axis)],
      series: series,
      hooks: { draw: [() => { el.dataset.drawn = "1"; }] },
    }, data, el);
  }
  const PALETTE_INLINE = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f"];

  // -- endpoint traffic -------------------------------------------------------------------------

  // The endpoint page polls the last minutes (per second) and redraws three charts: request
  // rate, latency percentiles and the error percentage. A second without requests has a rate of
  // 0 and a gap in the other two.
  const TRAFFIC = {
    rate: [["req/s", "#4e79a7", (d) => d.rate]],
    latency: [
      ["p50 ms", "#59a14f", (d) => d.p50_ms],
      ["p95 ms", "#f28e2b", (d) => d.p95_ms],
      ["p99 ms", "#e15759", (d) => d.p99_ms],
    ],
    errors: [["errors %", "#e15759", (d) => d.error_ratio.map((v) => (v === null ? null : 100 * v))]],
  };
  const TRAFFIC_HEIGHT = 200;
  const trafficBoxes = new Set();

  function drawTraffic(box, fresh) {
    const d = box._data;
    for (const el of box.querySelectorAll(".traffic-chart")) {
      const spec = TRAFFIC[el.dataset.metric];
      if (!spec) continue;
      const data = [d.time, ...spec.map((s) => s[2](d))];
      if (el._u && !fresh) { el._u.setData(data); continue; }
      if (el._u) el._u.destroy();
      el.replaceChildren();
      const fg = cssVar("--fg");
      const grid = cssVar("--grid");
      const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      el._u = new uPlot({
        width: Math.max(200, el.clientWidth || 340),
        height: TRAFFIC_HEIGHT,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [Object.assign({}, axis), Object.assign({ size: 56 }, axis)],
        series: [{ label: "time" }].concat(spec.map((s) => ({
          label: s[0], stroke: s[1], width: 1.5, points: { show: false },
        }))),
        cursor: { sync: { key: "traffic" } },
        hooks: { draw: [() => { el.dataset.drawn = "1"; }] },
      }, data, el);
    }
  }

  function followTraffic(box) {
    if (box._following) return;
    box._following = true;
    trafficBoxes.add(box);
    const every = 1000 * Number(box.dataset.pollS || 3);
    const tick = async () => {
      if (!box.isConnected) { trafficBoxes.delete(box); return; }
      if (!document.hidden) {
        try {
          const r = await fetch(box.dataset.traffic, {
            headers: { accept: "application/json" }, credentials: "same-origin",
          });
          if (r.status === 401) {
            location.assign("/login?next=" + encodeURIComponent(location.pathname));
            return;
          }
          if (r.ok) {
            box._data = await r.json();
            drawTraffic(box, false);
          }
        } catch (err) {
          // the server is restarting or the network blinked: the next tick tries again
        }
      }
      setTimeout(tick, every);
    };
    tick();
  }

  // The predictions table refreshes itself (htmx), except while a body in it is open.
  document.addEventListener("htmx:beforeRequest", (e) => {
    const elt = e.detail && e.detail.elt;
    if (elt && elt.id === "predictions" && elt.querySelector("details[open]")) e.preventDefault();
  });

  // -- wiring -----------------------------------------------------------------------------------

  function init(root) {
    for (const el of root.querySelectorAll(".chart[data-series]")) initChart(el);
    initControls(root);
    for (const g of root.querySelectorAll(".gallery[data-gallery]")) initGallery(g);
    for (const svg of root.querySelectorAll("svg.parcoords")) drawParcoords(svg);
    for (const pre of root.querySelectorAll("pre[data-log-stream]")) followLog(pre);
    for (const box of root.querySelectorAll("[data-traffic]")) followTraffic(box);
    for (const el of root.querySelectorAll(".chart[data-inline]")) initInline(el);
    if (root.querySelector(".select-run") || root.matches?.(".runs-table")) syncSelection(root);
    const live = root.id === "live" ? root : null;
    if (live) onLive(live);
    else {
      const first = root.querySelector("#live");
      if (first) { first._initial = true; onLive(first); first._initial = false; }
    }
  }

  // This script is deferred: the document is parsed, so start (charts first) without waiting
  // for htmx's load event; htmx.onLoad then covers the fragments it swaps in later.
  init(document.body);
  if (window.htmx) htmx.onLoad((elt) => { if (elt !== document.body) init(elt); });
})();
