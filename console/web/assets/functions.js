// The Functions page: every function with its latest version's configuration, its instances,
// and figures over its last invocations in the ledger; and the form that creates a function.
"use strict";

async function load() {
  const table = document.getElementById("functions");
  const body = table.querySelector("tbody");
  try {
    const list = await faas.api("functions");
    const fns = list.functions || [];
    const rows = [];
    for (const f of fns) {
      const recent = (await faas.api("functions/" + encodeURIComponent(f.name) +
                                     "/invocations?last=1000")).invocations || [];
      // Rows of other kinds (init, background CPU) are billed but are no invocations.
      const inv = recent.filter((r) => !r.kind || r.kind === "invocation");
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
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    table.hidden = false;
    faas.status(fns.length === 0 ? "No functions yet: create one below, or with faasctl deploy NAME LIB.so."
                                 : fns.length + (fns.length === 1 ? " function" : " functions"));
  } catch (e) {
    faas.status("Cannot load the functions: " + e.message, true);
  }
}

// The query of POST /console/api/functions: the name and every setting the form has a value for.
function createQuery(name) {
  const q = new URLSearchParams();
  q.set("name", name);
  return faas.settingsQuery("new", q);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("create-form");
  const err = document.getElementById("create-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    err.textContent = "";
    const nameInput = document.getElementById("new-name");
    const name = nameInput.value.trim();
    const file = document.getElementById("new-library").files[0];
    // The server decides (the control API's name check); this only saves a round trip.
    const problem = !file ? "Choose a .so library first." : "";
    if (problem) {
      err.textContent = problem;
      err.hidden = false;
      return;
    }
    faas.status("Creating " + name + "…");
    try {
      const r = await faas.api("functions?" + createQuery(name), { method: "POST", body: file });
      form.reset();
      await load();
      // After load(), which reports its own status.
      faas.status("Created " + name + " (version " + r.version.version + ").");
      const link = document.querySelector("#functions tr[data-function=\"" + CSS.escape(name) + "\"] a");
      if (link) link.focus();
    } catch (e) {
      err.textContent = (e.code ? e.code + ": " : "") + e.message;
      err.hidden = false;
      nameInput.setAttribute("aria-invalid", e.code === "invalid_name" || e.code === "function_exists" ? "true" : "false");
      faas.status("Create failed: " + e.message, true);
    }
  });
  load();
});
