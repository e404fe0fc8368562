// Validators for the vendored output schemas (test/schemas/README.md says where each comes from).
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
