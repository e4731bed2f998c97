// The web console in a real browser (docs/design/0026-console.md): a real faasd (--role all, a
// temp data dir, free ports) with deployed example functions and real invocations, and the
// system's headless Chromium driven by puppeteer-core (pinned in console/package-lock.json).
// It signs in, loads every page and asserts on the rendered DOM against what faasctl says;
// screenshots go to the artifacts folder.
//
//   node console_browser_test.mjs BIN_DIR FUNCTIONS_DIR VENDOR_DIR ARTIFACTS_DIR
// Exit 0: passed; 77: skipped (no Chromium or no puppeteer-core), with the reason; else failed.
import { spawn, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";

const [binDir, functionsDir, vendorDir, artifactsDir] = process.argv.slice(2);
const SKIP = 77;

function skip(reason) {
  console.log("SKIPPED: " + reason);
  process.exit(SKIP);
}

const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));
if (!chromium) {
  skip("no chromium (infra/install-deps.sh installs Debian's chromium)");
}
let puppeteer;
try {
  puppeteer = createRequire(path.join(vendorDir, "package.json"))("puppeteer-core");
} catch (e) {
  skip("puppeteer-core is not installed in " + vendorDir + " (the build runs npm ci): " + e.message);
}

// Polls `fn` every 20 ms until it returns a truthy value or `ms` pass.
async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "faas-console-browser-"));
fs.mkdirSync(artifactsDir, { recursive: true });
const readyFile = path.join(tmp, "ready.json");
const logPath = path.join(artifactsDir, "faasd.log");
const log = fs.openSync(logPath, "w");
const faasd = spawn(path.join(binDir, "faasd"), [
  "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--data-dir", path.join(tmp, "data"),
  "--ready-file", readyFile,
], { stdio: ["ignore", log, log] });
let browser = null;

async function main() {
  const ready = await until(() => fs.existsSync(readyFile) &&
    JSON.parse(fs.readFileSync(readyFile, "utf8")), 30000, "faasd's ready file");
  const base = "http://" + ready.http;
  const token = fs.readFileSync(path.join(tmp, "data", "admin-token"), "utf8").trim();
  const ctl = (...args) => execFileSync(path.join(binDir, "faasctl"),
    ["--server", ready.grpc, "--token", token, ...args], { encoding: "utf8" });
  const ctlJson = (...args) => JSON.parse(ctl(...args, "-o", "json"));

  ctl("deploy", "hello", path.join(functionsDir, "libhello.so"), "--public");
  ctl("deploy", "echo", path.join(functionsDir, "libecho.so"), "--public");
  for (let i = 0; i < 8; i++) {
    assert.equal((await fetch(base + "/function/hello")).status, 200);
  }
  for (let i = 0; i < 3; i++) {
    assert.equal((await fetch(base + "/function/echo", { method: "POST", body: "hi " + i })).status, 200);
  }

  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push("console error: " + m.text());
  });
  let promptAnswer = "";  // what the delete confirmation gets typed into it
  page.on("dialog", (d) => d.accept(d.type() === "prompt" ? promptAnswer : undefined));
  const shot = (name) => page.screenshot({ path: path.join(artifactsDir, name + ".png"), fullPage: true });

  // Without a session every page leads to sign-in.
  for (const p of ["/console/", "/console/function?name=hello", "/console/billing"]) {
    await page.goto(base + p);
    assert.equal(new URL(page.url()).pathname, "/console/signin", p);
  }
  await shot("signin");
  // A wrong token stays on sign-in, with the error announced.
  await page.type("#token", "not-the-token");
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  assert.ok(await page.$("#signin-error"), "the wrong token is reported");
  await page.type("#token", token);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  assert.equal(new URL(page.url()).pathname, "/console/");
  problems.length = 0;  // the wrong token's 401 was expected; from here on nothing may fail

  // Functions: names and invocation counts as the ledger says (faasctl invocations).
  await page.waitForSelector("#functions tbody tr[data-function]");
  await page.waitForSelector("#functions:not([hidden])");
  const rows = await page.$$eval("#functions tbody tr", (trs) =>
    trs.map((tr) => ({ name: tr.dataset.function, invocations: Number(tr.dataset.invocations),
                       text: tr.textContent })));
  assert.deepEqual(rows.map((r) => r.name).sort(), ["echo", "hello"]);
  for (const r of rows) {
    const ledger = ctlJson("invocations", r.name, "--last", "1000").invocations
      .filter((i) => i.kind === "invocation").length;
    assert.equal(r.invocations, ledger, r.name + ": invocations shown vs faasctl");
  }
  await shot("functions");

  // A function: charts with data, the invocations table, a waterfall and logs.
  await page.click("#functions a[href='/console/function?name=hello']");
  await page.waitForSelector("#latency-chart canvas");
  await page.waitForSelector("#invocations tbody tr");
  assert.equal(rows.find((r) => r.name === "hello").invocations, 8);
  const latencyPoints = await page.$eval("#latency-chart", (el) => Number(el.dataset.points));
  assert.ok(latencyPoints >= 1, "the latency chart has data");
  assert.ok(await page.$("#cold-chart canvas"), "the cold-start histogram is drawn");
  const invRows = await page.$$eval("#invocations tbody tr", (trs) => trs.length);
  const helloLedger = ctlJson("invocations", "hello", "--last", "1000").invocations;
  assert.equal(invRows, Math.min(50, helloLedger.length));
  const shownIds = await page.$$eval("#invocations tbody button", (bs) => bs.map((b) => b.textContent));
  assert.equal(shownIds[0], helloLedger[0].invocation_id, "newest first, as in the ledger");
  await page.click("#invocations tbody button");
  await page.waitForSelector("#detail:not([hidden]) #waterfall li");
  assert.equal(await page.$$eval("#waterfall li", (l) => l.length), 5);
  await until(() => page.$eval("#logs", (el) => el.textContent !== "Loading…"), 10000, "logs");
  await shot("function");

  // Upload a library with the deploy form's settings. The form starts with the current
  // configuration; settings out of bounds are refused by faasd, which names them in the form.
  assert.equal(await page.$eval("#cfg-memory_mb", (el) => el.value),
               String(ctlJson("describe", "hello").latest.config.memory_mb));
  const upload = await page.$("#upload");
  await upload.uploadFile(path.join(functionsDir, "libecho.so"));
  const setField = async (sel, value) => {
    await page.$eval(sel, (el) => { el.value = ""; });
    await page.type(sel, value);
  };
  await setField("#cfg-memory_mb", "4");
  await setField("#cfg-max_instances", "1001");
  await page.click("#upload-form button[type=submit]");
  await page.waitForSelector("#deploy-error:not([hidden])");
  const deployError = await page.$eval("#deploy-error", (el) => el.textContent);
  assert.ok(deployError.startsWith("invalid_config") && deployError.includes("memory_mb") &&
            deployError.includes("max_instances"), deployError);
  assert.equal(ctlJson("versions", "hello").versions.length, 1, "a refused deploy makes no version");
  // The refused request is logged by Chromium as a failed resource; nothing else may be.
  assert.ok(problems.every((m) => m.includes("status of 400")), problems.join("\n"));
  problems.length = 0;
  await setField("#cfg-memory_mb", "48");
  await setField("#cfg-max_instances", "4");
  await page.select("#cfg-isolation", "fresh");
  await page.click("#cfg-idempotent");
  await page.click("#upload-form button[type=submit]");
  const latestIs = (v) => page.waitForFunction((want) =>
    [...document.querySelectorAll("#versions tbody tr")]
      .some((tr) => tr.cells[0].textContent === want && tr.cells[4].textContent === "latest"),
  { timeout: 30000 }, v);
  await latestIs("v2");
  await until(() => page.$eval("#status", (el) => el.textContent.startsWith("Deployed version 2")),
              10000, "the upload's status");
  assert.equal(ctlJson("versions", "hello").versions.length, 2);
  assert.equal(await page.$eval("#deploy-error", (el) => el.hidden), true);
  const v2 = ctlJson("describe", "hello").latest.config;
  assert.equal(Number(v2.memory_mb), 48);
  assert.equal(Number(v2.max_instances), 4);
  assert.equal(v2.isolation, "fresh");
  assert.equal(v2.idempotent, true);
  await shot("function-uploaded");

  // Roll back (after a confirm dialog): v1 is latest again.
  await page.click("#versions tbody button");
  await latestIs("v1");
  assert.equal(ctlJson("versions", "hello").versions.find((v) => v.latest).version, 1);

  // A private function called with two tenants' API keys, for the bill per tenant below.
  ctl("deploy", "secret", path.join(functionsDir, "libhello.so"));
  const keys = { acme: ctlJson("key", "create", "--tenant", "acme").key,
                 globex: ctlJson("key", "create", "--tenant", "globex").key };
  for (const [tenant, n] of [["acme", 3], ["globex", 2]]) {
    for (let i = 0; i < n; i++) {
      const r = await fetch(base + "/function/secret", { headers: { Authorization: "Bearer " + keys[tenant] } });
      assert.equal(r.status, 200, tenant);
    }
  }

  // Billing: the table matches faasctl bill, and the chart has data.
  await page.goto(base + "/console/billing");
  await page.waitForSelector("#bill-total");
  await page.waitForSelector("#bill-chart canvas");
  const billed = await page.$$eval("#bill tbody tr", (trs) =>
    Object.fromEntries(trs.map((tr) => [tr.dataset.function, Number(tr.dataset.billedMs)])));
  const bill = ctlJson("bill", "--by", "function");
  for (const r of bill.rows) {
    assert.equal(billed[r.key], r.billed_ms, r.key + ": billed ms shown vs faasctl bill");
  }
  const csvHref = await page.$eval("#csv", (a) => a.href);
  const cookies = await page.cookies();
  const session = cookies.find((c) => c.name === "faas_console");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", "HttpOnly, Strict cookie");
  assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read the session");
  const csv = await (await fetch(csvHref, { headers: { Cookie: "faas_console=" + session.value } })).text();
  assert.ok(csv.startsWith("function,invocations,"), csv);
  await shot("billing");
  // Per tenant: one row per API key's tenant ("" for public functions), as faasctl bill --by tenant.
  await page.select("#by", "tenant");
  await page.waitForFunction(() => document.querySelectorAll("#bill tbody tr[data-tenant]").length > 0 &&
                                   document.getElementById("key-h").textContent === "Tenant");
  const perTenant = await page.$$eval("#bill tbody tr", (trs) =>
    Object.fromEntries(trs.map((tr) => [tr.dataset.tenant, Number(tr.dataset.invocations)])));
  const tenantBill = ctlJson("bill", "--by", "tenant");
  assert.deepEqual(perTenant, Object.fromEntries(tenantBill.rows.map((r) => [r.key, r.invocations])));
  assert.equal(perTenant.acme, 3);
  assert.equal(perTenant.globex, 2);
  assert.ok((await page.$eval("#csv", (a) => a.href)).includes("by=tenant"));
  await shot("billing-tenants");

  // Delete, with a confirm step: a wrong name deletes nothing; the right one deletes.
  await page.goto(base + "/console/function?name=echo");
  await page.waitForSelector("#versions tbody tr");
  // An invocation's own logs (echo writes "echo: N body bytes" to stderr).
  await page.click("#invocations tbody button");
  await until(() => page.$eval("#logs", (el) => el.textContent.includes("echo: ")), 10000,
              "the invocation's logs");
  // Live logs: a new invocation's output appears while following.
  await page.click("#follow");
  await until(() => page.$eval("#live-logs", (el) => el.textContent.includes("echo: ")), 10000,
              "the recent logs");
  assert.equal((await fetch(base + "/function/echo", { method: "POST", body: "1234567" })).status, 200);
  await until(() => page.$eval("#live-logs", (el) => el.textContent.includes("echo: 7 body bytes")),
              15000, "the new invocation's log line");
  await shot("function-logs");
  await page.click("#follow");
  promptAnswer = "ech";
  await page.click("#delete");
  await until(() => page.$eval("#status", (el) => el.textContent === "Not deleted."), 10000, "refusal");
  assert.equal(ctlJson("describe", "echo").name, "echo");
  promptAnswer = "echo";
  await Promise.all([page.waitForNavigation(), page.click("#delete")]);
  // The rows appear one by one (each function's invocations are fetched in turn).
  await page.waitForFunction(() => document.querySelectorAll("#functions tbody tr[data-function]").length === 2);
  assert.deepEqual(await page.$$eval("#functions tbody tr", (t) => t.map((tr) => tr.dataset.function).sort()),
                   ["hello", "secret"]);
  await page.goto(base + "/console/billing");
  await page.waitForSelector("#bill-total");

  // Queues: the trigger, its dead letter (the fail function never succeeds), a redrive.
  ctl("deploy", "fail", path.join(functionsDir, "libfail.so"));
  ctl("trigger", "add", "poison", "--function", "fail", "--source", "embedded", "--queue", "poison",
      "--max-attempts", "1");
  ctl("queue", "publish", "poison", "bad");
  await until(() => ctlJson("queue", "dlq", "poison").messages?.length === 1, 30000, "a dead letter");
  ctl("trigger", "add", "jobs", "--function", "hello", "--source", "embedded", "--queue", "jobs");
  await page.goto(base + "/console/queues");
  await page.waitForSelector("#triggers tbody tr[data-trigger=poison] button");
  // Throughput: messages acked while the page samples show as a rate above zero.
  await page.waitForSelector("#throughput:not([hidden])");
  for (let i = 0; i < 5; i++) ctl("queue", "publish", "jobs", "m" + i);
  await until(() => page.$eval("#throughput-chart", (el) =>
    Object.fromEntries(JSON.parse(el.dataset.rates || "[]")).jobs > 0), 30000, "a throughput above zero");
  assert.ok(await page.$("#throughput-chart canvas"), "the throughput chart is drawn");
  await page.click("#triggers tbody tr[data-trigger=poison] button");
  await page.waitForSelector("#dead-letters tbody tr");
  assert.ok((await page.$eval("#dead-letters tbody", (b) => b.textContent)).includes("bad"));
  await shot("queues");
  await page.click("#redrive");
  await until(() => page.$eval("#status", (el) => el.textContent === "Redriven: 1 messages."),
              10000, "the redrive");
  // Throughput history, from the ledger: after a reload (nothing sampled yet) the jobs trigger's
  // deliveries of the last hour are there, as many as faasctl invocations lists.
  const jobsOk = () => ctlJson("invocations", "hello", "--last", "1000").invocations
    .filter((i) => i.trigger === "queue" && i.queue === "jobs" && i.outcome === "ok" &&
                   Number(i.start_unix_ms) > Date.now() - 55 * 60000).length;
  await until(() => jobsOk() === 5, 30000, "five deliveries of jobs in the ledger");
  await page.goto(base + "/console/queues");
  await page.waitForSelector("#history:not([hidden]) #history-table tbody tr[data-trigger=jobs]");
  assert.equal(await page.$eval("#history-table tr[data-trigger=jobs]", (tr) => tr.dataset.succeeded), "5");
  assert.equal(await page.$eval("#history-table tr[data-trigger=jobs]", (tr) => tr.dataset.failed), "0");
  assert.ok(Number(await page.$eval("#history-table tr[data-trigger=poison]", (tr) => tr.dataset.failed)) >= 1,
            "the poison message's failed delivery is in the history");
  assert.ok(await page.$("#history-chart canvas"), "the history chart is drawn");
  assert.deepEqual(Object.fromEntries(JSON.parse(await page.$eval("#history-chart", (el) => el.dataset.succeeded))).jobs, 5);
  await shot("queues-history");

  // Cluster: this faasd (--role all) has none, and the page says so. The API's 409
  // not_clustered is logged by Chromium as a failed resource; nothing else may be.
  await page.goto(base + "/console/cluster");
  await page.waitForSelector("#no-cluster:not([hidden])");
  assert.equal(await page.$eval("#nodes", (el) => el.hidden), true);
  assert.equal(await page.$eval("#status", (el) => el.textContent), "No cluster.");
  await shot("cluster");
  assert.ok(problems.every((m) => m.includes("status of 409")), problems.join("\n"));
  problems.length = 0;

  // A new function from the Functions page: a bad name and an existing one are refused (by
  // faasd, which names the problem in the form); a good one appears in the list with its settings.
  await page.goto(base + "/console/functions");
  await page.waitForSelector("#functions tbody tr[data-function=hello]");
  const before = ctlJson("list").functions.length;
  const library = await page.$("#new-library");
  await library.uploadFile(path.join(functionsDir, "libecho.so"));
  const createWith = async (name) => {
    await page.$eval("#new-name", (el) => { el.value = ""; });
    await page.type("#new-name", name);
    await page.click("#create-form button[type=submit]");
  };
  for (const [name, code] of [["Not-Valid", "invalid_name"], ["hello", "function_exists"]]) {
    await createWith(name);
    await until(() => page.$eval("#create-error", (el, c) => !el.hidden && el.textContent.startsWith(c), code),
                10000, "the create form's " + code);
    assert.equal(await page.$eval("#new-name", (el) => el.getAttribute("aria-invalid")), "true");
  }
  assert.equal(ctlJson("list").functions.length, before, "a refused create makes no function");
  assert.equal(ctlJson("versions", "hello").versions.length, 2, "hello is left alone");
  assert.ok(problems.every((m) => m.includes("status of 400") || m.includes("status of 409")),
            problems.join("\n"));
  problems.length = 0;
  await page.type("#new-memory_mb", "32");
  await createWith("made-in-console");
  await page.waitForSelector("#functions tbody tr[data-function=made-in-console]");
  await until(() => page.$eval("#status", (el) => el.textContent === "Created made-in-console (version 1)."),
              10000, "the create's status");
  assert.equal(await page.$eval("#create-error", (el) => el.hidden), true);
  assert.equal(await page.$eval("#new-name", (el) => el.value), "", "the form is cleared");
  const made = ctlJson("describe", "made-in-console").latest.config;
  assert.equal(Number(made.memory_mb), 32);
  assert.equal(ctlJson("list").functions.length, before + 1);
  await shot("functions-created");

  // Keyboard: on a freshly loaded page the first Tab reaches the skip link.
  await page.goto(base + "/console/billing");
  await page.waitForSelector("#bill-total");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");

  // Sign out: the session is gone.
  await Promise.all([page.waitForNavigation(), page.click("#signout")]);
  assert.equal(new URL(page.url()).pathname, "/console/signin");
  await page.goto(base + "/console/functions");
  assert.equal(new URL(page.url()).pathname, "/console/signin");

  assert.deepEqual(problems, [], "no script errors or CSP violations");
  console.log("PASSED: sign-in, functions, function, upload with settings, create a function, billing per function and tenant, queues with their history, cluster, sign-out; screenshots in " + artifactsDir);
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error("FAILED: " + (e && e.stack ? e.stack : e));
  console.error("faasd log: " + logPath);
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  faasd.kill("SIGTERM");
  await until(() => faasd.exitCode !== null || faasd.signalCode !== null, 30000, "faasd to stop")
    .catch(() => faasd.kill("SIGKILL"));
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
