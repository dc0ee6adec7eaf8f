// Genesys dashboard: plots (uPlot), syntax highlighting (highlight.js), the sortable,
// filterable, virtualised leaderboard, the lineage graph (canvas + d3-zoom), admin actions
// and the live events. Server-sent events fill the feed and progress cells and make htmx
// fetch the sections they change again; htmx.onLoad runs `setup` for every swapped-in part.
"use strict";

const genesys = (() => {
  const TOKEN_KEY = "genesys-admin-token";
  const FEED_MAX = 60;

  function plot(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    const spec = JSON.parse(el.dataset.plot);
    const series = [{ label: spec.xlabel, value: spec.time ? "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" : undefined }];
    for (const s of spec.series) {
      series.push({
        label: s.label, stroke: s.color, width: s.line ? 2 : 0, dash: s.dash ? [6, 4] : undefined,
        paths: s.line ? undefined : () => null, spanGaps: true,
        points: { show: s.points || !s.line, size: s.line ? 5 : 7, fill: s.color, stroke: s.color },
      });
    }
    const hover = document.createElement("div");
    hover.className = "plot-hover";
    const options = {
      width: Math.max(280, el.clientWidth), height: 240, series,
      scales: { x: { time: !!spec.time } },
      axes: [{ label: spec.xlabel }, { label: spec.ylabel }],
      cursor: { points: { size: 8 } },
      hooks: {
        setCursor: [(u) => {
          const i = u.cursor.idx;
          hover.textContent = i != null && spec.names[i] ? spec.names[i] : "";
        }],
      },
    };
    const chart = new uPlot(options, [spec.x, ...spec.series.map((s) => s.values)], el);
    el.appendChild(hover);
    if (spec.links.length) {
      chart.over.style.cursor = "pointer";
      chart.over.addEventListener("click", () => {
        const i = chart.cursor.idx;
        if (i != null && spec.links[i]) window.location.href = "/d/" + spec.links[i];
      });
    }
  }

  // -- leaderboard: rows from the JSON endpoint, sorted and filtered in the browser, and
  // only the rows in view put in the DOM (10k designs load like 100) --------------------
  const ROW_HEIGHT = 30;
  const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const fmt = (value, err) => (value === null || value === undefined ? "-"
    : Number(value).toFixed(4) + (err ? ` <span class="pm">± ${Number(err).toFixed(4)}</span>` : ""));
  let board = null;

  function boardColumns(data) {
    const cols = [
      { label: "#", num: true, value: (r) => r.rank, html: (r) => r.rank },
      { label: "design", value: (r) => r.name.toLowerCase(),
        html: (r) => `<a href="/d/${esc(r.id)}">${esc(r.name)}</a>${r.seed ? ' <span class="chip">seed</span>' : ""} <span class="muted id">${esc(r.id.slice(0, 10))}</span>` },
    ];
    const fitness = { label: "fitness", num: true, value: (r) => r.fitness, html: (r) => fmt(r.fitness, r.fitness_stderr) };
    if (data.rung) cols.push({ label: "score", num: true, value: (r) => r.score, html: (r) => fmt(r.score) });
    cols.push(fitness,
      { label: "confidence", num: true, value: (r) => r.confidence, html: (r) => r.confidence },
      { label: "quadrant", value: (r) => r.quadrant, html: (r) => `<span class="q q-${esc(r.quadrant)}">${esc(r.quadrant.replace(/_/g, " "))}</span>` });
    for (const m of data.metric_names) {
      cols.push({ label: m, num: true, value: (r) => r.metrics[m] ?? null, html: (r) => fmt(r.metrics[m], r.stderr[m]) });
    }
    return cols;
  }

  function renderBoard() {
    const { el, table, rows, view, cols } = board;
    const first = Math.max(0, Math.floor(el.scrollTop / ROW_HEIGHT) - 10);
    const last = Math.min(view.length, first + Math.ceil(el.clientHeight / ROW_HEIGHT) + 20);
    const parts = [`<tr class="spacer" style="height:${first * ROW_HEIGHT}px"></tr>`];
    for (let k = first; k < last; k++) {
      const r = rows[view[k]];
      parts.push(`<tr data-id="${esc(r.id)}" data-quadrant="${esc(r.quadrant)}">`
        + cols.map((c) => `<td${c.num ? ' class="num"' : ""} data-v="${esc(c.value(r) ?? "")}">${c.html(r)}</td>`).join("")
        + "</tr>");
    }
    parts.push(`<tr class="spacer" style="height:${(view.length - last) * ROW_HEIGHT}px"></tr>`);
    table.tBodies[0].innerHTML = parts.join("");
    document.getElementById("lb-count").textContent = `${view.length} of ${rows.length} designs`;
  }

  function updateBoard() {
    const { rows, cols, sort } = board;
    const text = (document.getElementById("lb-filter").value || "").toLowerCase();
    const quadrant = document.getElementById("lb-quadrant").value;
    const view = [];
    rows.forEach((r, i) => {
      if ((!text || r.search.includes(text)) && (!quadrant || r.quadrant === quadrant)) view.push(i);
    });
    if (sort) {
      const col = cols[sort.index], sign = sort.dir === "asc" ? 1 : -1;
      const key = (i) => col.value(rows[i]);
      view.sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === y) return a - b;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * sign;
      });
    }
    board.view = view;
    renderBoard();
  }

  async function leaderboard(el) {
    const reply = await fetch(el.dataset.src);
    const data = await reply.json();
    if (!reply.ok) {
      el.innerHTML = `<p class="error">${esc(data.error || reply.status)}</p>`;
      return;
    }
    data.rows.forEach((r) => { r.search = `${r.name} ${r.id}`.toLowerCase(); });
    const first = !board;
    const cols = boardColumns(data);
    board = { ...(board || {}), el, data, rows: data.rows, cols, table: el.querySelector("table") };
    if (first) {
      board.table.tHead.innerHTML = "<tr>" + cols.map((c, i) => `<th data-sort="${c.num ? "num" : "text"}" data-index="${i}" tabindex="0">${esc(c.label)}</th>`).join("") + "</tr>";
      board.table.tHead.addEventListener("click", (e) => {
        const th = e.target.closest("th");
        if (!th) return;
        const index = Number(th.dataset.index);
        const dir = board.sort && board.sort.index === index && board.sort.dir === "asc" ? "desc" : "asc";
        board.sort = { index, dir };
        board.table.tHead.querySelectorAll("th").forEach((h) => delete h.dataset.dir);
        th.dataset.dir = dir;
        updateBoard();
      });
      el.addEventListener("scroll", () => requestAnimationFrame(renderBoard), { passive: true });
      document.getElementById("lb-filter").addEventListener("input", updateBoard);
      document.getElementById("lb-quadrant").addEventListener("change", updateBoard);
    }
    if (!data.rows.length) el.querySelector(".empty").hidden = false;
    updateBoard();
    el.dataset.ready = String(data.rows.length);
  }

  // -- lineage graph: a canvas drawing (thousands of designs stay fluid), d3-zoom for pan
  // and zoom, a uniform grid to find the design under the pointer ---------------------
  let graph = null;
  const RADIUS = 6;
  const CELL = 40;

  function buildGraph(el, data) {
    const canvas = document.createElement("canvas");
    el.replaceChildren(canvas);
    const n = data.nodes.length;
    const xs = new Float32Array(n), ys = new Float32Array(n);
    const index = new Map(), byColor = new Map(), grid = new Map();
    data.nodes.forEach((node, i) => {
      xs[i] = node.x; ys[i] = node.y; index.set(node.id, i);
      if (!byColor.has(node.color)) byColor.set(node.color, []);
      byColor.get(node.color).push(i);
      const key = `${Math.floor(node.x / CELL)},${Math.floor(node.y / CELL)}`;
      if (!grid.has(key)) grid.set(key, []);
      grid.get(key).push(i);
    });
    const edges = data.edges.map(([a, b]) => [index.get(a), index.get(b)])
      .filter(([a, b]) => a !== undefined && b !== undefined);
    const g = { el, canvas, data, xs, ys, edges, byColor, grid, index, selected: new Set(),
                transform: d3.zoomIdentity, frame: 0, drawMs: [] };
    const ctx = canvas.getContext("2d");

    function draw() {
      const started = performance.now();
      g.frame = 0;
      const ratio = window.devicePixelRatio || 1, w = el.clientWidth, h = el.clientHeight;
      if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
      const t = g.transform;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, w, h);
      ctx.setTransform(ratio * t.k, 0, 0, ratio * t.k, ratio * t.x, ratio * t.y);
      // the world rectangle on screen, with a margin: only what is visible is drawn
      const x0 = -t.x / t.k - 20, y0 = -t.y / t.k - 20, x1 = (w - t.x) / t.k + 20, y1 = (h - t.y) / t.k + 20;
      const visible = (i) => xs[i] >= x0 && xs[i] <= x1 && ys[i] >= y0 && ys[i] <= y1;
      ctx.lineWidth = 1 / t.k;
      ctx.strokeStyle = "#c8c8c8";
      ctx.beginPath();
      for (const [a, b] of edges) {
        if (!visible(a) && !visible(b)) continue;
        ctx.moveTo(xs[a], ys[a]);
        ctx.lineTo(xs[b], ys[b]);
      }
      ctx.stroke();
      const r = Math.max(RADIUS, 1.5 / t.k);
      const dots = r * t.k < 3;  // a few pixels wide: squares look the same and draw faster
      for (const [color, members] of byColor) {
        ctx.fillStyle = color;
        ctx.beginPath();
        for (const i of members) {
          if (!visible(i)) continue;
          if (dots) {
            ctx.rect(xs[i] - r, ys[i] - r, 2 * r, 2 * r);
          } else {
            ctx.moveTo(xs[i] + r, ys[i]);
            ctx.arc(xs[i], ys[i], r, 0, 2 * Math.PI);
          }
        }
        ctx.fill();
      }
      if (g.selected.size) {
        ctx.strokeStyle = "#d95f02";
        ctx.lineWidth = 3 / t.k;
        ctx.beginPath();
        for (const i of g.selected) { ctx.moveTo(xs[i] + r + 3 / t.k, ys[i]); ctx.arc(xs[i], ys[i], r + 3 / t.k, 0, 2 * Math.PI); }
        ctx.stroke();
      }
      if (t.k > 0.9) {  // names once they are readable, for at most 400 visible designs
        ctx.fillStyle = "#333";
        ctx.font = `${10 / t.k}px system-ui, sans-serif`;
        let shown = 0;
        for (let i = 0; i < n && shown < 400; i++) {
          if (visible(i)) { ctx.fillText(data.nodes[i].name, xs[i] + r + 2 / t.k, ys[i] + 3 / t.k); shown++; }
        }
      }
      g.drawMs.push(performance.now() - started);  // the last draw times, read by bench/dashboard.py
      if (g.drawMs.length > 500) g.drawMs.shift();
    }
    g.redraw = () => { if (!g.frame) g.frame = requestAnimationFrame(draw); };

    g.at = (px, py) => {  // the design under a screen point, or -1
      const [wx, wy] = g.transform.invert([px, py]);
      const reach = Math.max(RADIUS, 1.5 / g.transform.k) + 3 / g.transform.k;
      let best = -1, bestD = reach * reach;
      const cx = Math.floor(wx / CELL), cy = Math.floor(wy / CELL);
      for (let dx = -1; dx <= 1; dx++) {
        for (let dy = -1; dy <= 1; dy++) {
          for (const i of grid.get(`${cx + dx},${cy + dy}`) || []) {
            const d = (xs[i] - wx) ** 2 + (ys[i] - wy) ** 2;
            if (d <= bestD) { best = i; bestD = d; }
          }
        }
      }
      return best;
    };

    g.zoom = d3.zoom().scaleExtent([0.005, 8]).on("zoom", (e) => { g.transform = e.transform; g.redraw(); });
    g.selection = d3.select(canvas).call(g.zoom);
    g.fit = (members) => {
      const ids = members && members.length ? members : Array.from({ length: n }, (_, i) => i);
      if (!ids.length) return;
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const i of ids) { x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]); y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]); }
      const w = el.clientWidth, h = el.clientHeight, pad = 40;
      const k = Math.min(1.5, (w - 2 * pad) / Math.max(1, x1 - x0), (h - 2 * pad) / Math.max(1, y1 - y0));
      const t = d3.zoomIdentity.translate(w / 2 - k * (x0 + x1) / 2, h / 2 - k * (y0 + y1) / 2).scale(k);
      g.selection.call(g.zoom.transform, t);
    };
    const info = document.getElementById("lineage-info");
    canvas.addEventListener("mousemove", (e) => {
      const i = g.at(e.offsetX, e.offsetY);
      canvas.style.cursor = i >= 0 ? "pointer" : "grab";
      if (i >= 0) info.textContent = `${data.nodes[i].name} · fitness ${Number(data.nodes[i].fitness).toFixed(4)}`;
    });
    canvas.addEventListener("click", (e) => {
      const i = g.at(e.offsetX, e.offsetY);
      if (i >= 0) window.location.href = "/d/" + data.nodes[i].id;
    });
    return g;
  }

  async function lineage(el) {
    const info = document.getElementById("lineage-info");
    const reply = await fetch(el.dataset.src);
    if (!reply.ok) {
      info.textContent = `could not load the graph (${reply.status})`;
      return;
    }
    const data = await reply.json();
    const keep = graph && graph.transform;
    graph = buildGraph(el, data);
    if (keep) graph.selection.call(graph.zoom.transform, keep); else graph.fit();
    info.textContent = `${data.nodes.length} designs, ${data.edges.length} edges`;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      el.dataset.ready = String(data.nodes.length);
      performance.mark("lineage-ready");  // read by bench/dashboard.py
    }));
  }

  function findInLineage(text) {
    if (!graph) return;
    const q = text.toLowerCase();
    graph.selected = new Set();
    if (q) {
      graph.data.nodes.forEach((node, i) => {
        if (node.name.toLowerCase().includes(q) || node.id.startsWith(q)) graph.selected.add(i);
      });
    }
    if (graph.selected.size) graph.fit([...graph.selected]); else graph.redraw();
  }

  // -- admin actions ---------------------------------------------------------------------
  function notice(text, ok) {
    const box = document.getElementById("admin-result");
    box.hidden = false;
    box.textContent = text;
    box.className = "notice " + (ok ? "ok" : "error");
  }

  async function adminAction(button) {
    if (!window.confirm(button.dataset.confirm)) return;
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : {};
    const total = button.closest("tr")?.querySelector(".budget-total");
    if (button.dataset.action === "budget" && total) body.total = parseInt(total.value, 10);
    const headers = { "Content-Type": "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const reply = await fetch(`/api/admin/${button.dataset.action}/${encodeURIComponent(button.dataset.target)}`,
      { method: "POST", headers, body: JSON.stringify(body) });
    const out = await reply.json().catch(() => ({ error: `HTTP ${reply.status}` }));
    notice(reply.ok ? out.done : out.error, reply.ok);
  }

  function setup(root) {
    root.querySelectorAll(".plot[data-plot]").forEach(plot);
    root.querySelectorAll("pre code[class*=language-]").forEach((el) => {
      if (!el.dataset.highlighted) hljs.highlightElement(el);
    });
    root.querySelectorAll("button.admin:not([data-bound])").forEach((b) => {
      b.dataset.bound = "1";
      b.addEventListener("click", () => adminAction(b));
    });
  }

  // -- live events: the coordinator's Watch stream as server-sent events ----------------
  let source = null;
  const GROUPS = ["designs", "jobs", "budget", "experiment", "workers"];

  function connect(graphEl) {
    const live = document.getElementById("live-state");
    const feed = document.getElementById("feed");
    let reload = null;
    source = new EventSource(document.body.dataset.events);
    source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
    source.addEventListener("feed", (e) => {
      feed.insertAdjacentHTML("afterbegin", e.data);
      while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
    });
    source.addEventListener("job-progress", (e) => {
      const msg = JSON.parse(e.data);
      const cell = document.getElementById("progress-" + msg.job);
      if (cell) cell.innerHTML = msg.html;
    });
    for (const group of GROUPS) {
      // sections with hx-trigger="GROUP-changed from:body" fetch themselves again
      source.addEventListener(group, () => htmx.trigger(document.body, group + "-changed"));
    }
    const boardEl = document.getElementById("leaderboard");
    if (graphEl || boardEl) {
      source.addEventListener("designs", () => {
        clearTimeout(reload);
        reload = setTimeout(() => (graphEl ? lineage(graphEl) : leaderboard(boardEl)), graphEl ? 3000 : 1000);
      });
    }
  }

  function start() {
    setup(document.body);
    htmx.onLoad(setup);  // every part htmx swaps in (setup does nothing twice)
    const tokenInput = document.getElementById("admin-token");
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
    tokenInput.addEventListener("change", () => {
      if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
      else sessionStorage.removeItem(TOKEN_KEY);
    });
    const graphEl = document.getElementById("lineage");
    connect(graphEl);
    // a page left open in the back-forward cache must not hold a connection
    window.addEventListener("pagehide", () => source && source.close());
    window.addEventListener("pageshow", (e) => { if (e.persisted) connect(graphEl); });
    const boardEl = document.getElementById("leaderboard");
    const ready = [];
    if (boardEl) ready.push(leaderboard(boardEl));
    if (graphEl) {
      ready.push(lineage(graphEl));
      document.getElementById("lineage-find").addEventListener("change", (e) => findInLineage(e.target.value));
      document.getElementById("lineage-fit").addEventListener("click", () => graph && graph.fit());
      window.addEventListener("resize", () => graph && graph.redraw());
    }
    // every part of the page is set up (read by bench/dashboard.py)
    Promise.all(ready).then(() => performance.mark("dashboard-ready"));
  }

  document.addEventListener("DOMContentLoaded", start);
  return { lineage, graph: () => graph };
})();
