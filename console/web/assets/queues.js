// Queues and triggers: each trigger's state and counters, its embedded queue's backlog, and the
// dead letters, which can be redriven (moved back to their queue) after a confirm step.
"use strict";

let deadQueue = "";

// Throughput: the queues' cumulative `acked` counters, sampled while the page is open; the rate
// between two samples is the chart's point. Five minutes are kept.
const SAMPLE_MS = 2000;
const KEEP = 150;
let sampledQueues = [];
const samples = { t: [], acked: new Map() };  // acked: queue -> counter at each t

// A line chart in `el` (emptied by the caller): one line per label, series[k] for labels[k],
// over the times xs (seconds since the epoch, shown in UTC), the y axis named yLabel.
function drawLines(el, yLabel, labels, xs, series) {
  if (typeof uPlot === "undefined") {
    el.textContent = "Charts are not built in.";
    return;
  }
  const palette = [faas.colors.count, faas.colors.p50, faas.colors.p99, faas.colors.bars];
  new uPlot({
    width: faas.chartWidth(el), height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    axes: [{}, { label: yLabel }],
    series: [{}, ...labels.map((label, k) => ({ label, stroke: palette[k % palette.length], width: 2 }))],
  }, [xs, ...series], el);
}

function drawThroughput() {
  const el = document.getElementById("throughput-chart");
  const xs = [];
  const series = sampledQueues.map(() => []);
  for (let i = 1; i < samples.t.length; i++) {
    const dt = (samples.t[i] - samples.t[i - 1]) / 1000;
    xs.push(samples.t[i] / 1000);
    sampledQueues.forEach((q, k) => {
      const a = samples.acked.get(q);
      series[k].push(a[i] === null || a[i - 1] === null ? null : Math.max(0, a[i] - a[i - 1]) / dt);
    });
  }
  el.dataset.points = String(xs.length);
  el.dataset.rates = JSON.stringify(sampledQueues.map((q, k) => [q, series[k].reduce((m, v) => Math.max(m, v || 0), 0)]));
  el.textContent = "";
  if (xs.length === 0) {
    el.textContent = "Measuring…";
    return;
  }
  drawLines(el, "acked / s", sampledQueues, xs, series);
}

async function sampleThroughput() {
  const t = Date.now();
  const values = await Promise.all(sampledQueues.map((q) =>
    faas.api("queues/" + encodeURIComponent(q)).then((st) => faas.num(st.acked), () => null)));
  samples.t.push(t);
  sampledQueues.forEach((q, k) => samples.acked.get(q).push(values[k]));
  if (samples.t.length > KEEP) {
    samples.t.shift();
    for (const a of samples.acked.values()) a.shift();
  }
  drawThroughput();
}

function startThroughput(queues) {
  sampledQueues = [...new Set(queues)].sort();
  if (sampledQueues.length === 0) {
    return;
  }
  for (const q of sampledQueues) samples.acked.set(q, []);
  document.getElementById("throughput").hidden = false;
  sampleThroughput();
  setInterval(sampleThroughput, SAMPLE_MS);
}

// Throughput history: each trigger's deliveries per minute over the last hour, from the
// ledger's rows (trigger "queue", the trigger's queue or stream). Stored, unlike the sampled
// chart above, so it is there when the page opens, and the same on every gateway.
const HISTORY_MINUTES = 60;

async function loadHistory(triggers) {
  const section = document.getElementById("history");
  if (triggers.length === 0) {
    return;
  }
  const now = Date.now();
  const first = Math.floor(now / 60000) - HISTORY_MINUTES + 1;  // minute numbers since the epoch
  const xs = [];
  for (let m = 0; m < HISTORY_MINUTES; m++) xs.push((first + m) * 60);
  const rowsByFunction = new Map();
  const series = [];
  const body = document.querySelector("#history-table tbody");
  const tableRows = [];
  for (const t of triggers) {
    const fn = t.function;
    if (!rowsByFunction.has(fn)) {
      const r = await faas.api("functions/" + encodeURIComponent(fn) + "/invocations?last=1000")
        .catch(() => ({ invocations: [] }));  // a trigger whose function was deleted
      rowsByFunction.set(fn, r.invocations || []);
    }
    const ok = new Array(HISTORY_MINUTES).fill(0);
    let attempts = 0;
    let failed = 0;
    for (const row of rowsByFunction.get(fn)) {
      if (row.trigger !== "queue" || row.queue !== t.queue) continue;
      const m = Math.floor(faas.num(row.start_unix_ms) / 60000) - first;
      if (m < 0 || m >= HISTORY_MINUTES) continue;
      attempts++;
      if (row.outcome === "ok") ok[m]++;
      else failed++;
    }
    series.push(ok);
    const busiest = Math.max(...ok);
    const tr = faas.row([t.name, t.queue, String(attempts), String(attempts - failed), String(failed),
                         busiest > 0 ? busiest + " / min" : "–"], true);
    tr.dataset.trigger = t.name;
    tr.dataset.succeeded = String(attempts - failed);
    tr.dataset.failed = String(failed);
    tableRows.push(tr);
  }
  body.replaceChildren(...tableRows);
  section.hidden = false;
  const el = document.getElementById("history-chart");
  el.dataset.succeeded = JSON.stringify(triggers.map((t, k) => [t.name, series[k].reduce((a, v) => a + v, 0)]));
  el.textContent = "";
  drawLines(el, "succeeded / min", triggers.map((t) => t.name), xs, series);
}

function decodeText(b64) {
  const bin = atob(b64 || "");
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

async function showDead(queue) {
  deadQueue = queue;
  document.getElementById("dead").hidden = false;
  document.getElementById("dead-queue").textContent = queue;
  const body = document.querySelector("#dead-letters tbody");
  body.textContent = "";
  try {
    const r = await faas.api("queues/" + encodeURIComponent(queue) + "/dead");
    for (const m of r.messages || []) {
      body.appendChild(faas.row([m.message_id, faas.time(m.dead_unix_ms), String(m.attempts),
                                 m.error, decodeText(m.body).slice(0, 200)], true));
    }
  } catch (e) {
    faas.status("Cannot list the dead letters: " + e.message, true);
  }
}

async function load() {
  const body = document.querySelector("#triggers tbody");
  body.textContent = "";
  try {
    const r = await faas.api("triggers");
    const triggers = r.triggers || [];
    const embeddedQueues = [];
    for (const t of triggers) {
      const spec = t.trigger || {};
      const embedded = spec.source === "embedded";
      let backlog = "–";
      let dead = "–";
      if (embedded) {
        embeddedQueues.push(spec.queue);
        const st = await faas.api("queues/" + encodeURIComponent(spec.queue));
        backlog = faas.num(st.ready) + " / " + faas.num(st.delayed);
        // Dead letters live in their own list, named by the trigger (default QUEUE.dlq).
        const dlq = spec.dlq || spec.queue + ".dlq";
        dead = document.createElement("button");
        dead.type = "button";
        dead.className = "link";
        dead.textContent = "show " + dlq;
        dead.addEventListener("click", () => showDead(dlq));
      }
      const tr = faas.row([
        spec.name, spec.function, embedded ? "embedded " + spec.queue : spec.source + " " + spec.stream,
        t.state, faas.num(t.lag) < 0 ? "?" : String(faas.num(t.lag)), String(t.in_flight),
        String(faas.num(t.delivered)), String(faas.num(t.failed)), String(faas.num(t.dead_lettered)),
        backlog, dead,
      ], true);
      tr.dataset.trigger = spec.name;
      body.appendChild(tr);
    }
    startThroughput(embeddedQueues);
    await loadHistory(triggers.map((t) => t.trigger || {}).map((spec) => ({
      name: spec.name, function: spec.function, queue: spec.source === "embedded" ? spec.queue : spec.stream,
    })));
    faas.status(triggers.length === 0 ? "No triggers: add one with faasctl trigger add."
                                      : triggers.length + (triggers.length === 1 ? " trigger" : " triggers"));
  } catch (e) {
    faas.status("Cannot load the triggers: " + e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("redrive").addEventListener("click", async () => {
    if (!deadQueue || !window.confirm("Move every dead letter of " + deadQueue + " back to it?")) {
      return;
    }
    try {
      const r = await faas.api("queues/" + encodeURIComponent(deadQueue) + "/redrive", { method: "POST" });
      faas.status("Redriven: " + faas.num(r.replayed) + " messages.");
      await showDead(deadQueue);
    } catch (e) {
      faas.status("Redrive failed: " + e.message, true);
    }
  });
  load();
});
