// What a schema cannot know, checked against the sources (infra/k8s/validate.sh runs it on every
// rendered overlay):
//  - every faasd flag and FAAS_* variable the manifests use is one daemon/src/config.cc defines;
//  - every program a faas container starts is installed by infra/Containerfile's last stage (a
//    COPY destination, or the binary of a package it apt-installs), so the image, which cannot
//    be built on a machine without a container engine, at least has what the manifests name;
//  - faas containers use the faas image with a tag, probe /readyz and /healthz, drain for at
//    least the longest function timeout (kMaxTimeout, store/src/config.cc), and their
//    terminationGracePeriodSeconds covers --drain-delay + --shutdown-grace;
//  - a rendered admin token is long enough for faasd to accept it.
//
//   node check_refs.mjs RENDERED.yaml REPO_ROOT LABEL      (exit 1 with every problem listed)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";

const [input, root, label] = process.argv.slice(2);
const kImage = "ghcr.io/faas/faasd";
// Programs that packages of the runtime stage install.
const kPackageBinaries = {
  tini: ["/usr/bin/tini"],
  slirp4netns: ["/usr/bin/slirp4netns"],
};

const problems = [];
const note = (msg) => problems.push(`${label}: ${msg}`);

// --- faasd's flags and variables, from its parser.
const config = readFileSync(join(root, "daemon/src/config.cc"), "utf8");
const flags = new Set([...config.matchAll(/"(--[a-z0-9-]+)"/g)].map((m) => m[1]));
const envs = new Set([...config.matchAll(/"(FAAS_[A-Z0-9_]+)"/g)].map((m) => m[1]));
if (flags.size < 10 || envs.size < 10) {
  note(`read only ${flags.size} flags and ${envs.size} variables from daemon/src/config.cc`);
}

// --- the longest function timeout.
const storeConfig = readFileSync(join(root, "store/src/config.cc"), "utf8");
const maxTimeout = storeConfig.match(/kMaxTimeout = std::chrono::minutes\((\d+)\)/);
if (!maxTimeout) {
  note("cannot find kMaxTimeout = std::chrono::minutes(N) in store/src/config.cc");
}
const maxTimeoutMs = maxTimeout ? Number(maxTimeout[1]) * 60_000 : 0;

// --- what the Containerfile's last stage installs.
const containerfile = readFileSync(join(root, "infra/Containerfile"), "utf8")
  .replace(/\\\n/g, " ")  // join continued lines
  .split("\n")
  .filter((l) => !/^\s*#/.test(l));
const lastFrom = containerfile.findLastIndex((l) => /^\s*FROM\s/i.test(l));
const files = new Set();
const dirs = [];
for (const line of containerfile.slice(lastFrom)) {
  const copy = line.match(/^\s*COPY\s+(.*)$/i);
  if (copy) {
    const words = copy[1].trim().split(/\s+/).filter((w) => !w.startsWith("--"));
    const dest = words.pop();
    for (const src of words) {
      if (src.endsWith("/")) {
        dirs.push(dest.endsWith("/") ? dest : `${dest}/`);
      } else if (dest.endsWith("/")) {
        files.add(dest + src.split("/").pop());
      } else {
        files.add(dest);
      }
    }
  }
  const apt = line.match(/apt-get install ([^&]*)/);
  if (apt) {
    for (const pkg of apt[1].trim().split(/\s+/).filter((w) => !w.startsWith("-"))) {
      (kPackageBinaries[pkg] ?? []).forEach((b) => files.add(b));
    }
  }
}
const installed = (path) => files.has(path) || dirs.some((d) => path.startsWith(d));

function durationMs(text) {
  const m = String(text).match(/^(\d+)(ms|s|m|h)$/);
  if (!m) {
    return NaN;
  }
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
}

// --- every faas container in the rendered documents.
const docs = YAML.parseAllDocuments(readFileSync(input, "utf8")).map((d) => d.toJS());
let faasContainers = 0;
for (const doc of docs) {
  const pod = doc?.spec?.template?.spec;
  if (!pod) {
    continue;
  }
  for (const c of pod.containers ?? []) {
    if (!String(c.image).startsWith(`${kImage}`)) {
      continue;
    }
    faasContainers++;
    const where = `${doc.kind} ${doc.metadata.name}, container ${c.name}`;
    if (!/^ghcr\.io\/faas\/faasd(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$/.test(c.image) ||
        c.image.endsWith(":latest")) {
      note(`${where}: image ${c.image} has no tag or digest (or is :latest); set it in the overlay`);
    }
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    for (const path of c.command ?? []) {
      if (path.startsWith("/") && !installed(path)) {
        note(`${where}: ${path} is not installed by infra/Containerfile's runtime stage`);
      }
    }
    const faasd = argv.findIndex((a) => a.endsWith("/faasd"));
    if (faasd < 0) {
      note(`${where}: does not run /usr/local/bin/faasd`);
      continue;
    }
    const given = {};
    for (const arg of argv.slice(faasd + 1)) {
      if (!arg.startsWith("-")) {
        continue;  // a value of the previous flag
      }
      const [name, ...rest] = arg.split("=");
      if (!flags.has(name)) {
        note(`${where}: faasd has no flag ${name} (daemon/src/config.cc)`);
      }
      given[name] = rest.join("=");
      if ((name === "--worker" || name === "--slirp4netns") && !installed(given[name])) {
        note(`${where}: ${name}=${given[name]} is not installed by infra/Containerfile`);
      }
    }
    for (const e of c.env ?? []) {
      if (e.name.startsWith("FAAS_") && !envs.has(e.name)) {
        note(`${where}: faasd reads no variable ${e.name} (daemon/src/config.cc)`);
      }
    }
    if (c.readinessProbe?.httpGet?.path !== "/readyz") {
      note(`${where}: the readiness probe must be GET /readyz`);
    }
    if (c.livenessProbe?.httpGet?.path !== "/healthz") {
      note(`${where}: the liveness probe must be GET /healthz`);
    }
    const grace = durationMs(given["--shutdown-grace"] ?? "30s");
    const delay = durationMs(given["--drain-delay"] ?? "0s");
    if (!(grace >= maxTimeoutMs)) {
      note(`${where}: --shutdown-grace ${given["--shutdown-grace"] ?? "30s (default)"} is ` +
           `shorter than the longest function timeout, ${maxTimeoutMs / 60_000} min`);
    }
    const termination = pod.terminationGracePeriodSeconds ?? 30;
    if (!(termination * 1000 >= grace + delay)) {
      note(`${where}: terminationGracePeriodSeconds ${termination} is shorter than ` +
           `--drain-delay + --shutdown-grace (${(grace + delay) / 1000} s)`);
    }
  }
}
// An admin token rendered here (dev's generated Secret; prod's is created out of band) must
// be one faasd accepts: at least 16 characters after trailing spaces (daemon/src/daemon.cc).
for (const doc of docs) {
  if (doc?.kind === "Secret" && String(doc.metadata?.name).startsWith("faas-admin")) {
    const token = doc.data?.token !== undefined
      ? Buffer.from(doc.data.token, "base64").toString("utf8")
      : doc.stringData?.token;
    if (token === undefined || token.trimEnd().length < 16) {
      note(`Secret ${doc.metadata.name}: the admin token must have at least 16 characters`);
    }
  }
}
if (faasContainers === 0) {
  note(`no container runs ${kImage}`);
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`${label}: ${faasContainers} faas containers: flags, programs, probes and drain ok`);
