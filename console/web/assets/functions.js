// The Functions page: every function with its latest version's configuration, its instances,
// and figures over its last invocations in the ledger.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const table = document.getElementById("functions");
  const body = table.querySelector("tbody");
  try {
    const list = await faas.api("functions");
    const fns = list.functions || [];
    for (const f of fns) {
      const rows = (await faas.api("functions/" + encodeURIComponent(f.name) +
                                   "/invocations?last=1000")).invocations || [];
      // Rows of other kinds (init, background CPU) are billed but are no invocations.
      const inv = rows.filter((r) => !r.kind || r.kind === "invocation");
      const walls = inv.map((r) => faas.ms(r.wall_ns));
      const errors = inv.filter((r) => r.outcome !== "ok").length;
      const cfg = (f.latest && f.latest.config) || {};
      const link = document.createElement("a");
      link.href = "/console/function?name=" + encodeURIComponent(f.name);
      link.textContent = f.name;
      const tr = faas.row([
        link,
        String(f.latest_version),
        String(f.version_count),
        faas.num(cfg.memory_mb) + " MiB",
        faas.fmt(faas.num(cfg.timeout_ms) / 1000, 3) + " s",
        cfg.isolation || "",
        f.instances_idle + " / " + f.instances_busy,
        String(inv.length),
        inv.length ? faas.fmt(100 * inv.filter((r) => r.cold_start).length / inv.length) + " %" : "–",
        inv.length ? faas.fmt(100 * errors / inv.length) + " %" : "–",
        faas.fmt(faas.quantile(walls, 0.5), 2),
        faas.fmt(faas.quantile(walls, 0.99), 2),
      ], true);
      tr.dataset.function = f.name;
      tr.dataset.invocations = String(inv.length);
      body.appendChild(tr);
    }
    table.hidden = false;
    faas.status(fns.length === 0 ? "No functions yet: deploy one with faasctl deploy NAME LIB.so."
                                 : fns.length + (fns.length === 1 ? " function" : " functions"));
  } catch (e) {
    faas.status("Cannot load the functions: " + e.message, true);
  }
});
