// Live updates for the dashboard's pages. Server-sent events carry the daemon's
// `watch` stream; while they are down the page polls /api/snapshot. Every text
// from the daemon goes in with textContent, never as HTML.
"use strict";

const POLL_MS = 2000;
const TERMINAL = ["completed", "dead", "canceled"];
const LABELS = { failed: "retrying" };
let pollTimer = null;

function label(state) {
  return LABELS[state] || state;
}

function setLive(on) {
  const badge = document.getElementById("live");
  if (badge) {
    badge.textContent = on ? "live" : "polling";
    badge.className = "live " + (on ? "on" : "off");
  }
}

function applySnapshot(snap) {
  for (const el of document.querySelectorAll("[data-total]")) {
    el.textContent = snap.jobs[el.dataset.total];
  }
  for (const el of document.querySelectorAll("[data-workers]")) {
    el.textContent = snap.workers[el.dataset.workers];
  }
  renderRunning(snap.workers.running);
  const table = document.querySelector("#queues tbody");
  if (!table) return;
  for (const queue of snap.queues) {
    const row = table.querySelector(`tr[data-queue="${CSS.escape(queue.name)}"]`);
    if (!row) {
      if (document.body.dataset.page === "overview") scheduleReload();
      continue;
    }
    for (const cell of row.querySelectorAll("[data-count]")) {
      cell.textContent = queue.jobs[cell.dataset.count];
    }
  }
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function renderRunning(running) {
  const tbody = document.querySelector("#running tbody");
  if (!tbody) return;
  const rows = running.map((r) => {
    const tr = document.createElement("tr");
    const first = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/job/" + encodeURIComponent(r.job);
    link.textContent = r.job;
    first.appendChild(link);
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(r.started_at)) / 1000));
    tr.append(first, cell(r.worker), cell(seconds + "s ago"));
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell("Nothing is running.");
    td.colSpan = 3;
    tr.appendChild(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

let reloadTimer = null;
function scheduleReload() {
  // A queue the page has no row for: the server renders the new table.
  if (!reloadTimer) reloadTimer = setTimeout(() => location.reload(), 500);
}

function applyJobs(frame) {
  const page = document.body.dataset.page;
  for (const job of frame.jobs) {
    const cls = "state state-" + job.state;
    for (const row of document.querySelectorAll(`tr[data-job-id="${CSS.escape(job.id)}"]`)) {
      const cell = row.querySelector("[data-state]");
      if (cell) {
        cell.textContent = label(job.state);
        cell.className = cls;
      }
    }
    if (page === "jobs") maybeAddRow(job);
    if (page === "job" && job.id === document.body.dataset.jobId) jobChanged(job);
  }
}

function maybeAddRow(job) {
  const body = document.body.dataset;
  if (body.lastPage !== "yes") return;
  if (body.filterState && body.filterState !== job.state) return;
  if (body.filterQueue && job.queue && body.filterQueue !== job.queue) return;
  const tbody = document.querySelector("#jobs tbody");
  if (!tbody || tbody.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`)) return;
  fetch("/jobs/row/" + encodeURIComponent(job.id), { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : null))
    .then((html) => {
      if (!html || tbody.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`)) return;
      // Rendered (and escaped) by the server's template.
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      tbody.appendChild(template.content);
      const empty = document.getElementById("no-jobs");
      if (empty) empty.remove();
    });
}

function jobChanged(job) {
  const badge = document.getElementById("job-state");
  if (badge) {
    badge.textContent = label(job.state);
    badge.className = "state state-" + job.state;
  }
  // Runs, actions and the reason it waits change with the state: the server says.
  if (job.state !== "processing" || document.body.dataset.running !== "yes") scheduleReload();
}

function followOutput() {
  const data = document.body.dataset;
  const out = document.getElementById("output");
  if (data.page !== "job" || data.running !== "yes" || !out) return;
  const url = `/job/${encodeURIComponent(data.jobId)}/output?run=${data.run}&offset=${data.offset}`;
  fetch(url, { credentials: "same-origin" })
    .then((r) => {
      if (!r.ok) throw new Error(r.status);
      data.offset = r.headers.get("X-Offset");
      data.running = r.headers.get("X-Running") === "true" ? "yes" : "no";
      return r.text();
    })
    .then((text) => {
      if (text) out.appendChild(document.createTextNode(text));
      if (data.running === "yes") followOutput();
      else scheduleReload();
    })
    .catch(() => setTimeout(followOutput, POLL_MS));
}

function poll() {
  fetch("/api/snapshot", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((snap) => snap && applySnapshot(snap))
    .catch(() => {});
}

function startPolling() {
  setLive(false);
  if (!pollTimer) pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  setLive(true);
  if (pollTimer) {
    clearInterval(pollTimer);
    pollTimer = null;
  }
}

function listen() {
  if (!window.EventSource) return startPolling();
  const source = new EventSource("/events");
  source.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "down") return startPolling();
    stopPolling();
    if (frame.type === "snapshot") applySnapshot(frame);
    else if (frame.type === "jobs") {
      applyJobs(frame);
      if (frame.dropped) poll();
    } else if (frame.type === "resync") poll();
  };
  // The browser reconnects by itself; until then, poll.
  source.onerror = startPolling;
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  confirmations();
  if (document.body.dataset.page !== "login") listen();
  followOutput();
});
