// Makes a deliberately broken copy of rendered manifests, so infra/k8s/validate.sh can prove each
// check rejects what it is there to reject. Each mode breaks the real documents (not a toy one)
// in one way, and prints the words the rejection must name:
//   unknown-field   misspelt fields: the gateway's spec.replicas, the node's probe httpGet.path
//   wrong-type      spec.replicas "2" (a string) and a containerPort "8080"
//   bad-flag        a faasd argument that config.cc does not define
//   missing-binary  a node command path the Containerfile does not install
//   short-grace     the node's terminationGracePeriodSeconds below its drain
//   short-token     a dev admin token faasd would refuse (under 16 characters)
//   role-flag       a real flag the gateway role refuses (--node-id), for faasd itself to reject
//
//   node mutate.mjs MODE IN.yaml OUT.yaml   (prints the expected words, one a line)
import { readFileSync, writeFileSync } from "node:fs";
import YAML from "yaml";

const [mode, input, output] = process.argv.slice(2);
const docs = YAML.parseAllDocuments(readFileSync(input, "utf8")).map((d) => d.toJS());
const find = (kind, component) =>
  docs.find((d) => d?.kind === kind &&
                   d.metadata?.labels?.["app.kubernetes.io/component"] === component);
const gateway = find("Deployment", "gateway");
const node = find("DaemonSet", "node");
if (!gateway || !node) {
  console.error("mutate.mjs: the gateway Deployment or node DaemonSet is missing");
  process.exit(2);
}
const expect = [];
switch (mode) {
  case "unknown-field": {
    // One per document: TypeScript reports the first failure of each assignment only.
    const c = node.spec.template.spec.containers[0];
    gateway.spec.replicass = gateway.spec.replicas;
    delete gateway.spec.replicas;
    c.readinessProbe.httpGet.pathh = c.readinessProbe.httpGet.path;
    delete c.readinessProbe.httpGet.path;
    expect.push("replicass", "pathh");
    break;
  }
  case "wrong-type":
    gateway.spec.replicas = String(gateway.spec.replicas);
    node.spec.template.spec.containers[0].ports[0].containerPort = "8080";
    expect.push("Type 'string' is not assignable to type 'number'");
    break;
  case "bad-flag":
    node.spec.template.spec.containers[0].args.push("--drain-dealy=5s");
    expect.push("--drain-dealy");
    break;
  case "missing-binary":
    node.spec.template.spec.containers[0].command[2] = "/usr/local/libexec/faas/node-setup";
    expect.push("/usr/local/libexec/faas/node-setup");
    break;
  case "short-grace":
    node.spec.template.spec.terminationGracePeriodSeconds = 30;
    expect.push("terminationGracePeriodSeconds 30");
    break;
  case "role-flag":
    gateway.spec.template.spec.containers[0].args.push("--node-id=gw-1");
    expect.push("--node-id is for --role node or all");
    break;
  case "short-token": {
    const secret = docs.find((d) => d?.kind === "Secret" &&
                                    String(d.metadata?.name).startsWith("faas-admin"));
    secret.data.token = Buffer.from("too-short").toString("base64");
    expect.push("at least 16 characters");
    break;
  }
  default:
    console.error(`mutate.mjs: unknown mode "${mode}"`);
    process.exit(2);
}
writeFileSync(output, docs.map((d) => YAML.stringify(d)).join("---\n"));
console.log(expect.join("\n"));
