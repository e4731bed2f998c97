// Cluster: the node registry (the control API's ListNodes, as `faasctl node list`), and draining
// a node (DrainNode, as `faasctl node drain ID`) after a confirm step. On a faasd without a
// cluster (`--role all`, or any faasd on SQLite) the control API answers not_clustered and the
// page says so.
"use strict";

async function drain(id) {
  if (!window.confirm("Drain node " + id + "? Gateways stop sending it work within a second; " +
                      "it finishes what it runs. It takes work again only when it registers anew.")) {
    return;
  }
  faas.status("Draining " + id + "…");
  try {
    const n = await faas.api("nodes/" + encodeURIComponent(id) + "/drain", { method: "POST" });
    faas.status("Node " + n.id + " is " + n.state + " (epoch " + faas.num(n.epoch) + ").");
  } catch (e) {
    faas.status("Cannot drain " + id + ": " + e.message, true);
  }
  await load(false);
}

async function load(announce = true) {
  const table = document.getElementById("nodes");
  const body = table.querySelector("tbody");
  try {
    const r = await faas.api("nodes");
    const nodes = r.nodes || [];
    body.textContent = "";
    for (const n of nodes) {
      let action = "–";
      if (n.state === "up") {
        action = document.createElement("button");
        action.type = "button";
        action.textContent = "Drain…";
        action.setAttribute("aria-label", "Drain node " + n.id);
        action.addEventListener("click", () => drain(n.id));
      }
      const load = Number(n.load);
      // Known for the nodes that are up and answered this gateway just now.
      const fns = (n.functions || []).map((f) => f.function + " (" + f.idle + " / " + f.busy + ")");
      const tr = faas.row([
        n.id, n.state, String(faas.num(n.epoch)), load < 0 ? "–" : faas.fmt(load * 100, 0) + " %",
        n.stats_known ? n.instances_idle + " / " + n.instances_busy : "–",
        n.stats_known ? (fns.join(", ") || "none") : "–",
        faas.fmt(Number(n.capacity), 2), faas.fmt(faas.num(n.heartbeat_age_ms) / 1000, 1) + " s ago",
        n.address, n.http_address, action,
      ], true);
      tr.dataset.node = n.id;
      tr.dataset.state = n.state;
      tr.dataset.functions = (n.functions || []).map((f) => f.function).join(",");
      tr.classList.add("state-" + n.state);
      body.appendChild(tr);
    }
    table.hidden = false;
    if (announce) {
      const up = nodes.filter((n) => n.state === "up").length;
      faas.status(nodes.length + " nodes, " + up + " up");
    }
  } catch (e) {
    if (e.code === "not_clustered") {
      document.getElementById("no-cluster").hidden = false;
      faas.status("No cluster.");
    } else {
      faas.status("Cannot list the nodes: " + e.message, true);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => load());
