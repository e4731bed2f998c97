// Starts the built faasd with each faas container's exact arguments and environment, so faasd's
// own parser judges them: values (durations, ranges, host:port), and the combinations each role
// refuses (e.g. --node-id on a gateway), which no static check knows. Only what cannot run here
// is replaced: the listen addresses (127.0.0.1:0), the data dir and token file (a temp dir),
// $(VAR) references (test values), and the store (a PostgreSQL URL that refuses connections).
// So a good container gets past flag parsing to a runtime failure (exit 1; here the store:
// faasd.store_failed, or whichever outside service it opens first); a bad argument exits 2
// with faasd's usage message.
//
//   node run_args.mjs RENDERED.yaml FAASD LABEL      (exit 1 naming every container that fails)
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import YAML from "yaml";

const [input, faasd, label] = process.argv.slice(2);
const kRefused = "postgres://127.0.0.1:1/faas";  // port 1: connection refused at once
const vars = { NODE_NAME: "k8s-test-node", POD_IP: "10.0.0.1" };
const docs = YAML.parseAllDocuments(readFileSync(input, "utf8")).map((d) => d.toJS());
const problems = [];
let ran = 0;
for (const doc of docs) {
  for (const c of doc?.spec?.template?.spec?.containers ?? []) {
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    const at = argv.findIndex((a) => a.endsWith("/faasd"));
    if (at < 0) {
      continue;
    }
    const where = `${label}: ${doc.kind} ${doc.metadata.name}, container ${c.name}`;
    const dir = mkdtempSync(join(tmpdir(), "faas-k8s-args-"));
    writeFileSync(join(dir, "token"), "k8s-args-test-token-0123456789\n", { mode: 0o600 });
    const args = argv.slice(at + 1).map((a) => {
      const [name] = a.split("=");
      const replaced = {
        "--http": "--http=127.0.0.1:0",
        "--grpc": "--grpc=127.0.0.1:0",
        "--data-dir": `--data-dir=${dir}`,
        "--admin-token-file": `--admin-token-file=${join(dir, "token")}`,
      }[name];
      return (replaced ?? a).replace(/\$\(([A-Z_]+)\)/g, (m, v) => vars[v] ?? m);
    });
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
    for (const e of c.env ?? []) {
      env[e.name] = e.name === "FAAS_STORE" ? kRefused
                  : e.value ?? (e.valueFrom?.fieldRef ? vars[e.name] ?? "x" : "redis://127.0.0.1:1");
    }
    const r = spawnSync(faasd, args, { env, encoding: "utf8", timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
    ran++;
    const out = `${r.stdout}${r.stderr}`.trim();
    if (r.status !== 1) {
      problems.push(`${where}: faasd ${args.join(" ")}\n  exited ${r.status ?? r.signal}, ` +
                    `not 1 past its flags:\n  ${out.split("\n").slice(-3).join("\n  ")}`);
    }
  }
}
if (ran === 0) {
  problems.push(`${label}: no container runs faasd`);
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`${label}: faasd accepts the arguments of its ${ran} containers`);
