// Validators for the vendored output schemas (test/schemas/README.md says where each comes from).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ajvDraft04 from "ajv-draft-04";
import ajvFormats from "ajv-formats";

// CommonJS packages: under NodeNext their class and function sit on `.default`.
const Ajv = ajvDraft04.default;
const addFormats = ajvFormats.default;

export const schemaDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "schemas");

/** A validator for the SARIF 2.1.0 JSON schema (draft-04). */
export function sarifValidator() {
  // unicodeRegExp off: the schema's "language" pattern has a stray "]" that only non-unicode regexps accept.
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats(ajv);
  return ajv.compile(JSON.parse(readFileSync(path.join(schemaDir, "sarif-2.1.0-rtm.5.json"), "utf8")));
}

/**
 * xmllint (Debian's libxml2-utils), or why there is none. With CI=true and root, it is
 * installed the way .ci/run-browser-setup.sh installs chromium.
 */
export function xmllint(): { path: string } | { skip: string } {
  const find = () => spawnSync("sh", ["-c", "command -v xmllint"], { encoding: "utf8" }).stdout.trim();
  let p = find();
  if (!p && process.env.CI === "true" && process.getuid?.() === 0) {
    spawnSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libxml2-utils"], { stdio: "ignore", timeout: 300_000 });
    p = find();
  }
  return p ? { path: p } : { skip: "xmllint not found; install it with apt-get install -y libxml2-utils (CI=true as root installs it)" };
}
