// Billing: billed CPU-ms and cost per function or per tenant (the API key's) over a period (the
// control API's Bill, the same figures as `faasctl bill --by function|tenant`), per day as a
// chart, with a CSV export of the table.
"use strict";

const DAY = 86400000;

function dateValue(unixMs) {
  return new Date(unixMs).toISOString().slice(0, 10);
}

function period() {
  const since = Date.parse(document.getElementById("since").value + "T00:00:00Z");
  const until = Date.parse(document.getElementById("until").value + "T00:00:00Z") + DAY;
  const fn = document.getElementById("fn").value;
  const q = new URLSearchParams();
  if (Number.isFinite(since)) q.set("since", String(since));
  if (Number.isFinite(until)) q.set("until", String(until));
  if (fn) q.set("function", fn);
  return q;
}

// One bar per day of the period, days without invocations at zero.
function chart(rows, q) {
  const el = document.getElementById("bill-chart");
  el.textContent = "";
  const byDay = new Map(rows.map((r) => [r.key, faas.num(r.billed_ms)]));
  const first = Number(q.get("since")) || (rows.length ? Date.parse(rows[0].key + "T00:00:00Z") : Date.now());
  const end = Number(q.get("until")) || Date.now();
  const xs = [];
  const ys = [];
  for (let t = first; t < end; t += DAY) {
    xs.push(t / 1000);
    ys.push(byDay.get(dateValue(t)) || 0);
  }
  el.dataset.points = String(rows.length);
  if (rows.length === 0) {
    el.textContent = "Nothing billed in this period.";
    return;
  }
  if (typeof uPlot === "undefined") {
    el.textContent = "Charts are not built in.";
    return;
  }
  new uPlot({
    width: faas.chartWidth(el), height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x: { time: true, auto: false, range: [xs[0] - DAY / 2000, xs[xs.length - 1] + DAY / 2000] } },
    axes: [{}, { label: "billed ms" }],
    series: [
      {},
      { label: "billed ms", stroke: faas.colors.bars, fill: "rgba(91,62,166,0.35)",
        paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false } },
    ],
  }, [xs, ys], el);
}

async function load() {
  const q = period();
  const by = document.getElementById("by").value === "tenant" ? "tenant" : "function";
  const byFn = new URLSearchParams(q);
  byFn.set("by", by);
  document.getElementById("by-name").textContent = by;
  document.getElementById("key-h").textContent = by === "tenant" ? "Tenant" : "Function";
  const byDay = new URLSearchParams(q);
  byDay.set("by", "day");
  document.getElementById("csv").href = "/console/api/bill.csv?" + byFn.toString();
  try {
    const [fns, days] = await Promise.all([faas.api("bill?" + byFn), faas.api("bill?" + byDay)]);
    const unit = fns.currency_unit || "micro-units";
    const body = document.querySelector("#bill tbody");
    body.textContent = "";
    const cells = (r, name) => [
      name, String(faas.num(r.invocations)), faas.fmt(r.cpu_ms, 3), String(faas.num(r.billed_ms)),
      faas.num(r.cost_micros) + " " + unit, String(faas.num(r.cold_starts)), String(faas.num(r.errors)),
    ];
    for (const r of fns.rows || []) {
      // Public functions and calls through the control API have no tenant.
      const name = by === "tenant" && r.key === "" ? "(no tenant)" : r.key;
      const tr = faas.row(cells(r, name), true);
      tr.dataset[by] = r.key;
      tr.dataset.billedMs = String(faas.num(r.billed_ms));
      tr.dataset.invocations = String(faas.num(r.invocations));
      body.appendChild(tr);
    }
    const foot = document.querySelector("#bill tfoot");
    foot.textContent = "";
    if (fns.total) {
      const tr = faas.row(cells(fns.total, "Total"), true);
      tr.id = "bill-total";
      tr.dataset.billedMs = String(faas.num(fns.total.billed_ms));
      foot.appendChild(tr);
    }
    chart(days.rows || [], q);
    const n = (fns.rows || []).length;
    faas.status(n + (by === "tenant" ? " tenants" : " functions") + " billed in this period");
  } catch (e) {
    faas.status("Cannot load the bill: " + e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const now = Date.now();
  document.getElementById("since").value = dateValue(now - 6 * DAY);
  document.getElementById("until").value = dateValue(now);
  try {
    const list = await faas.api("functions");
    const select = document.getElementById("fn");
    for (const f of list.functions || []) {
      const o = document.createElement("option");
      o.value = f.name;
      o.textContent = f.name;
      select.appendChild(o);
    }
  } catch (e) {
    faas.status("Cannot list the functions: " + e.message, true);
  }
  document.getElementById("by").addEventListener("change", () => load());
  document.getElementById("period").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  load();
});
