// The status page: polls the control plane's JSON API with the operator's API key (kept in
// sessionStorage, sent as a bearer token) and renders nodes, charts, purges and origins.
// Every value goes into the page as text (textContent), never as HTML.
"use strict";
(function () {
  const KEY = "cdn.status.apiKey";
  const POLL_MS = 2000;
  const TIERS = ["edge", "mid", "origin", "router"];
  const COLORS = { edge: "#2563eb", mid: "#7c3aed", origin: "#ea580c", router: "#059669" };
  const $ = (id) => document.getElementById(id);

  let key = sessionStorage.getItem(KEY);
  let points = [];
  let windowS = 3600;
  let lastT = null;
  let timer = null;

  class AuthError extends Error {}

  async function api(path) {
    const resp = await fetch(path, {
      headers: { Authorization: "Bearer " + key, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.status === 401 || resp.status === 403) {
      throw new AuthError((body && body.error) || `HTTP ${resp.status}`);
    }
    if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
    return body;
  }

  // -- formatting ---------------------------------------------------------------------
  const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %");
  const num = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  function bytes(n) {
    if (typeof n !== "number") return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleTimeString();
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    return td;
  }
  function badge(text, cls) {
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = "badge " + cls;
    span.textContent = text;
    td.appendChild(span);
    return td;
  }
  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  // -- rendering ----------------------------------------------------------------------
  function renderNodes(nodes) {
    const rows = nodes.map((n) => {
      const tr = document.createElement("tr");
      tr.dataset.node = n.name;
      const notes = [];
      if (n.error) notes.push(n.error);
      const down = (n.upstreams || []).filter((u) => u.up === false).map((u) => u.url);
      if (down.length) notes.push("upstream down: " + down.join(", "));
      if (n.failover_forced) notes.push("serving in failover");
      if (n.restarts) notes.push(`restarted ${n.restarts}× by cdnctl up`);
      tr.append(
        cell(n.name), cell(n.tier), cell(`${n.host}:${n.port}`),
        badge(n.healthy ? "healthy" : "down", n.healthy ? "up" : "down"),
        cell(num(n.rps), "num"), cell(pct(n.hit_ratio), "num"),
        cell(n.cache_entries, "num"), cell(n.cache_bytes === null || n.cache_bytes === undefined ? "–" : bytes(n.cache_bytes), "num"),
        cell(notes.join("; ") || "", "note"),
      );
      return tr;
    });
    fill($("nodes").tBodies[0], rows);
    const healthy = nodes.filter((n) => n.healthy).length;
    const c = $("c-nodes");
    c.textContent = `${healthy} / ${nodes.length}`;
    c.className = "value " + (healthy === nodes.length ? "good" : "bad");
  }

  function renderCharts() {
    const now = Date.now() / 1000;
    const t1 = Math.max(now, lastT || now);
    const first = points.length ? points[0].t : t1;
    const t0 = t1 - Charts.span(t1 - first, windowS);
    const series = (field, tiers) => tiers
      .filter((tier) => points.some((p) => p.tiers[tier]))
      .map((tier) => ({
        name: tier,
        color: COLORS[tier] || "#64748b",
        points: points.map((p) => [p.t, p.tiers[tier] ? p.tiers[tier][field] : null]),
      }));
    Charts.line($("chart-hit"), series("hit_ratio", ["edge", "mid"]),
      { t0, t1, yMax: 1, format: (v) => Math.round(v * 100) + "%" });
    Charts.line($("chart-rps"), series("rps", TIERS), { t0, t1, format: (v) => num(v, v < 10 ? 1 : 0) });
    const last = points.length ? points[points.length - 1].tiers.edge : null;
    $("c-hit").textContent = last ? pct(last.hit_ratio) : "–";
    $("c-rps").textContent = last ? num(last.rps) : "–";
  }

  function renderPurges(purges) {
    const rows = purges.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.purge = p.id;
      const acks = Object.values(p.nodes || {});
      const acked = acks.filter((a) => a.state === "acked").length;
      const target = (p.value === null ? p.type : `${p.type} ${p.value}`) + (p.soft ? " (soft)" : "");
      let took = "–";
      if (p.completed_at) {
        const ms = new Date(p.completed_at) - new Date(p.created_at);
        if (!isNaN(ms)) took = ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
      }
      const cls = p.state === "complete" ? "up" : p.state === "pending" ? "pending" : "down";
      tr.append(cell(p.seq, "num"), cell(target, "target"), badge(p.state, cls),
        cell(when(p.created_at)), cell(when(p.completed_at)), cell(took, "num"),
        cell(`${acked}/${acks.length}`, "num"));
      return tr;
    });
    fill($("purges").tBodies[0], rows);
    $("purges-empty").hidden = rows.length > 0;
  }

  function renderServices(services) {
    const rows = services.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.service = s.name;
      const p = s.progress;
      const rollout = p ? `${p.done}/${p.total} nodes` + (p.pending_nodes.length
        ? ` (waiting for ${p.pending_nodes.join(", ")})` : "") : "not active";
      const cls = !p ? "down" : p.state === "complete" ? "up" : "pending";
      tr.append(cell(s.name), cell(s.domains.join(", "), "target"),
        cell(s.active_version === null ? "–" : `v${s.active_version}`, "num"),
        cell(`v${s.latest_version}`, "num"), badge(rollout, cls));
      return tr;
    });
    fill($("services").tBodies[0], rows);
    $("services-empty").hidden = rows.length > 0;
  }

  function renderOrigins(data) {
    const f = data.failover || {};
    const p = $("failover");
    const c = $("c-failover");
    if (f.forced) {
      p.textContent = `Failover forced since ${when(f.since)}` + (f.reason ? `: ${f.reason}` : "") +
        " — mid tiers answer from cache without asking the origin.";
      p.className = "failover error";
      c.textContent = "forced";
      c.className = "value bad";
    } else {
      p.textContent = "Failover off: mid tiers fetch from the origin (stale copies answer only on errors).";
      p.className = "failover";
      c.textContent = "off";
      c.className = "value good";
    }
    const rows = (data.origins || []).map((o) => {
      const tr = document.createElement("tr");
      const seen = (data.upstreams || []).map((u) => {
        const by = Object.entries(u.seen_by || {});
        return `${u.url}: ${by.filter(([, v]) => v.up).length}/${by.length} up`;
      });
      tr.append(cell(o.name), badge(o.healthy ? "healthy" : "down", o.healthy ? "up" : "down"),
        cell(seen.join("; ") || "–", "note"));
      return tr;
    });
    fill($("origins").tBodies[0], rows);
  }

  // -- polling ------------------------------------------------------------------------
  function setLive(ok, text) {
    const live = $("live");
    live.className = "live " + (ok ? "ok" : "err");
    live.textContent = text;
  }

  async function tick() {
    timer = null;
    try {
      const since = lastT === null ? "" : `?since=${lastT}`;
      const [hist, purges, origins, services] = await Promise.all([
        api("/v1/stats/history" + since), api("/v1/purges?limit=10"), api("/v1/origins"),
        api("/v1/services"),
      ]);
      windowS = hist.window || windowS;
      for (const p of hist.points) if (lastT === null || p.t > lastT) points.push(p);
      if (points.length) lastT = points[points.length - 1].t;
      const cutoff = (lastT || Date.now() / 1000) - windowS;
      points = points.filter((p) => p.t >= cutoff);
      showDash();
      renderNodes(hist.nodes || []);
      renderCharts();
      renderPurges(purges.purges || []);
      renderServices(services.services || []);
      renderOrigins(origins);
      setLive(true, "live · " + new Date().toLocaleTimeString());
    } catch (err) {
      if (err instanceof AuthError) { logout("The control plane refused the key: " + err.message); return; }
      setLive(false, "cannot reach the control plane: " + err.message);
    }
    if (key) timer = setTimeout(tick, POLL_MS);
  }

  function showDash() {
    $("login").hidden = true;
    $("dash").hidden = false;
    $("forget").hidden = false;
  }

  function logout(message) {
    if (timer) clearTimeout(timer);
    timer = null;
    key = null;
    sessionStorage.removeItem(KEY);
    points = [];
    lastT = null;
    $("dash").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setLive(false, "signed out");
    $("key").focus();
  }

  function start() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = $("key").value.trim();
      if (!value) return;
      key = value;
      sessionStorage.setItem(KEY, key);
      $("key").value = "";
      $("login-error").textContent = "";
      tick();
    });
    $("forget").addEventListener("click", () => logout(""));
    if (key) tick(); else logout("");
  }

  start();
})();
