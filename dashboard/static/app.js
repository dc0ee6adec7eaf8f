// Genesys dashboard: plots (uPlot), syntax highlighting (highlight.js), the sortable and
// filterable leaderboard, the lineage graph (cytoscape), admin actions and the live events.
// Server-sent events fill the feed and progress cells and make htmx fetch the sections they
// change again; htmx.onLoad runs `setup` for every swapped-in part.
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

  // -- leaderboard: sort by a header, filter by text and quadrant -------------------------
  function cellValue(row, index, numeric) {
    const v = row.cells[index].dataset.v ?? row.cells[index].textContent;
    if (!numeric) return v.toLowerCase();
    const n = parseFloat(v);
    return Number.isNaN(n) ? -Infinity : n;
  }

  function sortable(table) {
    if (table.dataset.sortable) return;
    table.dataset.sortable = "1";
    table.querySelectorAll("th[data-sort]").forEach((th, index) => {
      th.tabIndex = 0;
      th.addEventListener("click", () => {
        const numeric = th.dataset.sort === "num";
        const dir = th.dataset.dir === "asc" ? "desc" : "asc";
        table.querySelectorAll("th").forEach((h) => delete h.dataset.dir);
        th.dataset.dir = dir;
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const keyed = rows.map((r) => [cellValue(r, index, numeric), r]);
        keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0) * (dir === "asc" ? 1 : -1));
        body.append(...keyed.map((k) => k[1]));
      });
    });
  }

  function filterLeaderboard() {
    const table = document.getElementById("leaderboard-table");
    if (!table) return;
    const text = (document.getElementById("lb-filter")?.value || "").toLowerCase();
    const quadrant = document.getElementById("lb-quadrant")?.value || "";
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const ok = (!text || row.textContent.toLowerCase().includes(text))
        && (!quadrant || row.dataset.quadrant === quadrant);
      row.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    const count = document.getElementById("lb-count");
    if (count) count.textContent = `${shown} of ${table.tBodies[0].rows.length} designs`;
  }

  // -- lineage graph ---------------------------------------------------------------------
  let graph = null;

  async function lineage(el) {
    const info = document.getElementById("lineage-info");
    const reply = await fetch(el.dataset.src);
    if (!reply.ok) {
      info.textContent = `could not load the graph (${reply.status})`;
      return;
    }
    const data = await reply.json();
    const elements = data.nodes.map((n) => ({
      group: "nodes", data: { id: n.id, label: n.name, color: n.color, fitness: n.fitness },
      position: { x: n.x, y: n.y },
    }));
    data.edges.forEach(([s, t], i) => elements.push({ group: "edges", data: { id: "e" + i, source: s, target: t } }));
    const big = data.nodes.length > 2000;
    if (graph) graph.destroy();
    graph = cytoscape({
      container: el, elements, layout: { name: "preset" }, wheelSensitivity: 0.3,
      textureOnViewport: big, hideEdgesOnViewport: big, hideLabelsOnViewport: big, pixelRatio: big ? 1 : "auto",
      minZoom: 0.01, maxZoom: 4,
      style: [
        { selector: "node", style: { "background-color": "data(color)", width: 14, height: 14,
          label: big ? "" : "data(label)", "font-size": 9, "text-valign": "bottom", color: "#333",
          "min-zoomed-font-size": 8 } },
        { selector: "edge", style: { width: 1, "line-color": "#c8c8c8", "curve-style": "haystack" } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#d95f02", label: "data(label)" } },
      ],
    });
    graph.on("tap", "node", (e) => { window.location.href = "/d/" + e.target.id(); });
    graph.on("mouseover", "node", (e) => {
      info.textContent = `${e.target.data("label")} · fitness ${Number(e.target.data("fitness")).toFixed(4)}`;
    });
    info.textContent = `${data.nodes.length} designs, ${data.edges.length} edges`;
    graph.ready(() => requestAnimationFrame(() => {
      el.dataset.ready = String(data.nodes.length);
      performance.mark("lineage-ready");  // read by bench/dashboard.py
    }));
  }

  function findInLineage(text) {
    if (!graph || !text) return;
    const q = text.toLowerCase();
    const hit = graph.nodes().filter((n) => n.data("label").toLowerCase().includes(q) || n.id().startsWith(q));
    graph.nodes().unselect();
    if (hit.length) {
      hit.select();
      graph.animate({ fit: { eles: hit, padding: 80 } }, { duration: 300 });
    }
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
    root.querySelectorAll("table.sortable").forEach(sortable);
    root.querySelectorAll("button.admin:not([data-bound])").forEach((b) => {
      b.dataset.bound = "1";
      b.addEventListener("click", () => adminAction(b));
    });
    filterLeaderboard();
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
    if (graphEl) {
      source.addEventListener("designs", () => {
        clearTimeout(reload);
        reload = setTimeout(() => lineage(graphEl), 3000);
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
    document.getElementById("lb-filter")?.addEventListener("input", filterLeaderboard);
    document.getElementById("lb-quadrant")?.addEventListener("change", filterLeaderboard);
    const graphEl = document.getElementById("lineage");
    connect(graphEl);
    // a page left open in the back-forward cache must not hold a connection
    window.addEventListener("pagehide", () => source && source.close());
    window.addEventListener("pageshow", (e) => { if (e.persisted) connect(graphEl); });
    if (graphEl) {
      lineage(graphEl);
      document.getElementById("lineage-find").addEventListener("change", (e) => findInLineage(e.target.value));
      document.getElementById("lineage-fit").addEventListener("click", () => graph && graph.fit(undefined, 30));
    }
    performance.mark("dashboard-ready");  // every part of the page is set up
  }

  document.addEventListener("DOMContentLoaded", start);
  return { lineage, graph: () => graph };
})();
