// Shared by every console page: the JSON API (/console/api/, docs/http-api.md "Console"),
// sign-out, and small formatting helpers. No framework; no inline scripts (the CSP forbids them).
"use strict";

const faas = (() => {
  let csrf = null;

  // GET or change something through the console API. A 401 means the session ended: back to
  // sign-in. Other errors throw an Error with the API's message and code.
  async function api(path, options = {}) {
    const init = { credentials: "same-origin", headers: {}, ...options };
    if (init.method && init.method !== "GET") {
      init.headers["X-Faas-Csrf"] = await csrfToken();
    }
    const res = await fetch("/console/api/" + path, init);
    if (res.status === 401) {
      window.location.assign("/console/signin");
      throw new Error("signed out");
    }
    const type = res.headers.get("Content-Type") || "";
    const body = type.startsWith("application/json") ? await res.json() : await res.text();
    if (!res.ok) {
      const e = new Error(body && body.error ? body.error.message : "HTTP " + res.status);
      e.code = body && body.error ? body.error.code : "";
      throw e;
    }
    return body;
  }

  async function csrfToken() {
    if (csrf === null) {
      const res = await fetch("/console/api/session", { credentials: "same-origin" });
      if (res.status === 401) {
        window.location.assign("/console/signin");
        throw new Error("signed out");
      }
      csrf = (await res.json()).csrf_token;
    }
    return csrf;
  }

  // Proto3 JSON prints 64-bit integers as strings.
  const num = (v) => (v === undefined || v === null || v === "" ? 0 : Number(v));
  const ms = (ns) => num(ns) / 1e6;
  const fmt = (v, digits = 1) =>
    Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits }) : "–";
  const time = (unixMs) => new Date(num(unixMs)).toISOString().replace("T", " ").slice(0, 23);

  // The q-quantile (0..1) of numbers, nearest rank; NaN for none.
  function quantile(values, q) {
    if (values.length === 0) {
      return NaN;
    }
    const s = [...values].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  }

  // <td> cells from values (text only: names and messages never become markup).
  function row(cells, header = false) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => {
      const td = document.createElement(header && i === 0 ? "th" : "td");
      if (header && i === 0) {
        td.scope = "row";
      }
      if (c instanceof Node) {
        td.appendChild(c);
      } else {
        td.textContent = c;
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function status(text, isError = false) {
    const el = document.getElementById("status");
    if (el) {
      el.textContent = text;
      el.classList.toggle("error", isError);
    }
  }

  // Colours for charts: dark enough for contrast on white.
  const colors = { p50: "#1f5fa8", p99: "#b3261e", count: "#2e7d32", bars: "#5b3ea6" };

  function chartWidth(el) {
    return Math.max(320, Math.min(960, el.clientWidth || 800));
  }

  // The number fields of the function settings (console/web/_settings.html), named as in
  // FunctionConfig and the console API's query.
  const settingNumbers = ["memory_mb", "timeout_ms", "max_instances", "min_warm", "idle_ttl_ms"];

  // Adds to the query `q` every setting of the settings fields with ids PREFIX-NAME: the numbers
  // that have a value, the isolation and idempotent. Returns `q`.
  function settingsQuery(prefix, q) {
    for (const k of settingNumbers) {
      const v = document.getElementById(prefix + "-" + k).value.trim();
      if (v !== "") q.set(k, v);
    }
    q.set("isolation", document.getElementById(prefix + "-isolation").value);
    q.set("idempotent", document.getElementById(prefix + "-idempotent").checked ? "true" : "false");
    return q;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const out = document.getElementById("signout");
    if (out) {
      out.addEventListener("click", async () => {
        try {
          await fetch("/console/signout", {
            method: "POST",
            credentials: "same-origin",
            headers: { "X-Faas-Csrf": await csrfToken() },
          });
        } finally {
          window.location.assign("/console/signin");
        }
      });
    }
  });

  return {
    api, num, ms, fmt, time, quantile, row, status, colors, chartWidth, settingNumbers, settingsQuery,
  };
})();
