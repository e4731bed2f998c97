// Queues and triggers: each trigger's state and counters, its embedded queue's backlog, and the
// dead letters, which can be redriven (moved back to their queue) after a confirm step.
"use strict";

let deadQueue = "";

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
    for (const t of triggers) {
      const spec = t.trigger || {};
      const embedded = spec.source === "embedded";
      let backlog = "–";
      let dead = "–";
      if (embedded) {
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
