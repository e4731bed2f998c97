// One function: latency over time and invocations per minute, a cold-start histogram, the last
// invocations with each one's phase waterfall and logs, its versions (rollback, upload) and
// deletion. Every figure comes from the ledger through the console API.
"use strict";

const params = new URLSearchParams(window.location.search);
const fnName = params.get("name") || "";
const fnPath = "functions/" + encodeURIComponent(fnName);

function latencyChart(inv) {
  const el = document.getElementById("latency-chart");
  el.textContent = "";
  const perMinute = new Map();
  for (const r of inv) {
    const minute = Math.floor(faas.num(r.start_unix_ms) / 60000) * 60;
    if (!perMinute.has(minute)) {
      perMinute.set(minute, []);
    }
    perMinute.get(minute).push(faas.ms(r.wall_ns));
  }
  const xs = [...perMinute.keys()].sort((a, b) => a - b);
  const data = [
    xs,
    xs.map((x) => faas.quantile(perMinute.get(x), 0.5)),
    xs.map((x) => faas.quantile(perMinute.get(x), 0.99)),
    xs.map((x) => perMinute.get(x).length),
  ];
  el.dataset.points = String(xs.length);
  if (typeof uPlot === "undefined" || xs.length === 0) {
    el.textContent = xs.length === 0 ? "No invocations yet." : "Charts are not built in.";
    return;
  }
  new uPlot({
    width: faas.chartWidth(el), height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),  // as the table: UTC
    // One minute of data would otherwise be stretched over years.
    scales: { x: { time: true, auto: false, range: [xs[0] - 60, xs[xs.length - 1] + 60] }, ms: {}, n: {} },
    axes: [{}, { scale: "ms", label: "ms" }, { scale: "n", side: 1, label: "per minute", grid: { show: false } }],
    series: [
      {},
      { label: "p50 ms", scale: "ms", stroke: faas.colors.p50, width: 2, points: { show: true } },
      { label: "p99 ms", scale: "ms", stroke: faas.colors.p99, width: 2, points: { show: true } },
      { label: "invocations", scale: "n", stroke: faas.colors.count, width: 1, dash: [4, 4], points: { show: true } },
    ],
  }, data, el);
}

// Wall time of cold and of warm invocations side by side: what a cold start costs, at a glance.
function coldHistogram(inv) {
  const el = document.getElementById("cold-chart");
  el.textContent = "";
  const cold = inv.filter((r) => r.cold_start).map((r) => faas.ms(r.wall_ns));
  const warm = inv.filter((r) => !r.cold_start).map((r) => faas.ms(r.wall_ns));
  el.dataset.points = String(cold.length);
  if (cold.length === 0) {
    el.textContent = "No cold starts among the last invocations.";
    return;
  }
  const max = Math.max(...cold, ...warm);
  const bins = Math.min(20, Math.max(5, Math.ceil(Math.sqrt(cold.length + warm.length))));
  const width = max > 0 ? max / bins : 1;
  const xs = Array.from({ length: bins }, (_, i) => (i + 0.5) * width);
  const count = (values) => {
    const c = new Array(bins).fill(0);
    for (const v of values) {
      c[Math.min(bins - 1, Math.floor(v / width))]++;
    }
    return c;
  };
  if (typeof uPlot === "undefined") {
    el.textContent = "Charts are not built in.";
    return;
  }
  new uPlot({
    width: faas.chartWidth(el), height: 220,
    scales: { x: { time: false, range: [0, max > 0 ? max : 1] } },
    axes: [{ label: "wall ms", values: (u, vals) => vals.map((v) => faas.fmt(v, 3)) },
           { label: "invocations" }],
    series: [
      { label: "ms", value: (u, v) => (v === null ? "--" : faas.fmt(v, 3)) },
      { label: "cold", stroke: faas.colors.p99, fill: "rgba(179,38,30,0.35)",
        paths: uPlot.paths.bars({ size: [0.45], align: -1 }), points: { show: false } },
      { label: "warm", stroke: faas.colors.p50, fill: "rgba(31,95,168,0.35)",
        paths: uPlot.paths.bars({ size: [0.45], align: 1 }), points: { show: false } },
    ],
  }, [xs, count(cold), count(warm)], el);
}

function waterfall(r) {
  const phases = [
    ["queue", faas.ms(r.queue_ns)], ["spawn", faas.ms(r.spawn_ns)], ["load", faas.ms(r.load_ns)],
    ["init", faas.ms(r.init_ns)], ["exec", faas.ms(r.exec_ns)],
  ];
  const total = phases.reduce((a, [, v]) => a + v, 0) || 1;
  const list = document.getElementById("waterfall");
  list.textContent = "";
  let offset = 0;
  for (const [name, v] of phases) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.className = "phase-name";
    label.textContent = name + " " + faas.fmt(v, 3) + " ms";
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar phase-" + name;
    // CSSOM, not a style attribute: allowed by the CSP.
    bar.style.marginLeft = (100 * offset / total) + "%";
    bar.style.width = Math.max(0.3, 100 * v / total) + "%";
    track.appendChild(bar);
    li.append(label, track);
    list.appendChild(li);
    offset += v;
  }
}

function decodeText(b64) {
  const bin = atob(b64 || "");
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

async function showInvocation(r) {
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-id").textContent = r.invocation_id;
  waterfall(r);
  const pre = document.getElementById("logs");
  pre.textContent = "Loading…";
  try {
    const logs = await faas.api(fnPath + "/logs?invocation=" + encodeURIComponent(r.invocation_id));
    const text = (logs.entries || []).map((e) => decodeText(e.text)).join("");
    pre.textContent = text || "(this invocation wrote nothing to stdout or stderr)";
  } catch (e) {
    pre.textContent = "Cannot load the logs: " + e.message;
  }
}

function invocationsTable(inv) {
  const body = document.querySelector("#invocations tbody");
  body.textContent = "";
  for (const r of inv.slice(0, 50)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = r.invocation_id;
    button.addEventListener("click", () => showInvocation(r));
    const tr = faas.row([
      button, faas.time(r.start_unix_ms), String(r.version), r.trigger, r.outcome,
      r.cold_start ? "cold" : "warm", faas.fmt(faas.ms(r.wall_ns), 3),
      faas.fmt(faas.ms(r.cpu_ns), 3), String(faas.num(r.billed_ms)),
    ], true);
    if (r.outcome !== "ok") {
      tr.classList.add("failed");
    }
    body.appendChild(tr);
  }
}

function versionsTable(versions) {
  const body = document.querySelector("#versions tbody");
  body.textContent = "";
  for (const v of [...versions].sort((a, b) => b.version - a.version)) {
    let action = "";
    if (!v.latest) {
      action = document.createElement("button");
      action.type = "button";
      action.textContent = "Roll back to v" + v.version;
      action.addEventListener("click", async () => {
        if (!window.confirm("Make version " + v.version + " of " + fnName + " the latest?")) {
          return;
        }
        try {
          await faas.api(fnPath + "/rollback?version=" + v.version, { method: "POST" });
          await load();
        } catch (e) {
          faas.status("Rollback failed: " + e.message, true);
        }
      });
    }
    body.appendChild(faas.row([
      "v" + v.version, faas.time(v.created_unix_ms), faas.fmt(faas.num(v.size_bytes) / 1024) + " KiB",
      (v.artifact_sha256 || "").slice(0, 16), v.latest ? "latest" : "", action,
    ], true));
  }
}

let deployFormFilled = false;

// Fills the deploy form with the current configuration once (later loads keep what was typed).
function fillDeployForm(cfg) {
  if (deployFormFilled) {
    return;
  }
  deployFormFilled = true;
  for (const k of faas.settingNumbers) {
    document.getElementById("cfg-" + k).value = String(faas.num(cfg[k]));
  }
  document.getElementById("cfg-isolation").value = cfg.isolation || "warm";
  document.getElementById("cfg-idempotent").checked = !!cfg.idempotent;
}

// The query of POST .../versions: every setting the form has a value for.
function deploySettings() {
  return faas.settingsQuery("cfg", new URLSearchParams());
}

async function load() {
  try {
    const [info, versions, invs] = await Promise.all([
      faas.api(fnPath), faas.api(fnPath + "/versions"), faas.api(fnPath + "/invocations?last=1000"),
    ]);
    // Rows of other kinds (init, background CPU) are billed but are no invocations.
    const all = invs.invocations || [];
    const inv = all.filter((r) => !r.kind || r.kind === "invocation");
    const cfg = (info.latest && info.latest.config) || {};
    const summary = document.getElementById("summary");
    summary.textContent = "";
    const walls = inv.map((r) => faas.ms(r.wall_ns));
    const facts = [
      ["Latest version", "v" + info.latest_version],
      ["Memory", faas.num(cfg.memory_mb) + " MiB"],
      ["Timeout", faas.fmt(faas.num(cfg.timeout_ms) / 1000, 3) + " s"],
      ["Isolation", cfg.isolation], ["Network", cfg.network],
      ["Instances idle / busy", info.instances_idle + " / " + info.instances_busy],
      ["Invocations (last 1000)", String(inv.length)],
      ["Errors", String(inv.filter((r) => r.outcome !== "ok").length)],
      ["Cold starts", String(inv.filter((r) => r.cold_start).length)],
      ["p50 / p99 ms", faas.fmt(faas.quantile(walls, 0.5), 2) + " / " + faas.fmt(faas.quantile(walls, 0.99), 2)],
      ["Billed ms (all rows)", String(all.reduce((a, r) => a + faas.num(r.billed_ms), 0))],
    ];
    for (const [k, v] of facts) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      summary.append(dt, dd);
    }
    fillDeployForm(cfg);
    latencyChart([...inv].reverse());
    coldHistogram(inv);
    invocationsTable(all);
    versionsTable(versions.versions || []);
    faas.status(inv.length + " invocations in the ledger's last " + all.length + " rows");
  } catch (e) {
    faas.status("Cannot load " + fnName + ": " + e.message, true);
  }
}

// Follows the function's log entries: the newest 20 first, then every entry after the largest
// sequence number seen, every 2 s while the box is ticked.
let followSeq = 0;
let followTimer = null;
async function followOnce() {
  const pre = document.getElementById("live-logs");
  try {
    const q = followSeq > 0 ? "?after_seq=" + followSeq + "&last=1000" : "?last=20";
    const r = await faas.api(fnPath + "/logs" + q);
    for (const e of r.entries || []) {
      followSeq = Math.max(followSeq, faas.num(e.seq));
      pre.textContent += "[" + faas.time(e.start_unix_ms) + " " + e.invocation_id + "] " +
        decodeText(e.text);
    }
    pre.scrollTop = pre.scrollHeight;
  } catch (e) {
    faas.status("Cannot follow the logs: " + e.message, true);
  }
  if (document.getElementById("follow").checked) {
    followTimer = setTimeout(followOnce, 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("follow").addEventListener("change", (ev) => {
    clearTimeout(followTimer);
    if (ev.target.checked) {
      followOnce();
    }
  });
  document.getElementById("title").textContent = fnName;
  document.title = fnName + " · faas console";
  document.getElementById("upload-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = document.getElementById("upload").files[0];
    if (!file) {
      faas.status("Choose a .so library first.", true);
      return;
    }
    const err = document.getElementById("deploy-error");
    err.hidden = true;
    err.textContent = "";
    faas.status("Deploying " + file.name + "…");
    try {
      const r = await faas.api(fnPath + "/versions?" + deploySettings(), { method: "POST", body: file });
      await load();
      // After load(), which reports its own status.
      faas.status(r.unchanged ? "Same library and configuration: no new version."
                              : "Deployed version " + r.version.version + ".");
    } catch (e) {
      // Shown in the form too, next to the fields it is about (invalid_config lists them all).
      err.textContent = (e.code ? e.code + ": " : "") + e.message;
      err.hidden = false;
      faas.status("Deploy failed: " + e.message, true);
    }
  });
  document.getElementById("delete").addEventListener("click", async () => {
    const typed = window.prompt("Delete " + fnName + " and all its versions? Type its name to confirm.");
    if (typed !== fnName) {
      faas.status("Not deleted.");
      return;
    }
    try {
      await faas.api(fnPath, { method: "DELETE" });
      window.location.assign("/console/functions");
    } catch (e) {
      faas.status("Delete failed: " + e.message, true);
    }
  });
  load();
});
