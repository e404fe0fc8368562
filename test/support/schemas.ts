// Validators for the vendored output schemas (test/schemas/README.md says where each comes from).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ajv07 from "ajv";
import ajvDraft04 from "ajv-draft-04";
import ajvFormats from "ajv-formats";

// CommonJS packages: under NodeNext their class and function sit on `.default`.
const Ajv = ajv07.default;
const AjvDraft04 = ajvDraft04.default;
const addFormats = ajvFormats.default;

export const schemaDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "schemas");

const schema = (file: string) => JSON.parse(readFileSync(path.join(schemaDir, file), "utf8")) as object;

/**
 * A validator for SARIF 2.1.0: the final OASIS schema (draft-07), then the rtm.5 draft
 * (draft-04) that tools built before the standard still validate against. `errors` are
 * those of the first schema the log fails.
 */
export function sarifValidator() {
  const final = new Ajv({ allErrors: true, strict: false });
  addFormats(final);
  // unicodeRegExp off: rtm.5's "language" pattern has a stray "]" (the final schema fixed it) that only non-unicode regexps accept.
  const rtm5 = new AjvDraft04({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats(rtm5);
  const schemas = [final.compile(schema("sarif-schema-2.1.0.json")), rtm5.compile(schema("sarif-2.1.0-rtm.5.json"))];
  const validate = (log: unknown): boolean => {
    const failed = schemas.find((v) => !v(log));
    validate.errors = failed?.errors;
    return failed === undefined;
  };
  validate.errors = undefined as (typeof schemas)[number]["errors"];
  return validate;
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
