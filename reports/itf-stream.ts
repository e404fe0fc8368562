// Reading a large ITF document without holding it: a byte-level scanner over chunks that
// cuts out the top-level values and each element of "states" as text, so that each is
// JSON.parse'd on its own. Only the structure is checked here; every piece cut out is
// validated by JSON.parse.
import { ItfError, MAX_ITF_DEPTH } from "./itf.ts";

export interface ScanHandlers {
  /** A top-level value other than "states" (called when `wantTop(key)`), as JSON text. */
  top?: (key: string, json: string) => void;
  wantTop?: (key: string) => boolean;
  /** The top-level "states" value: whether it is an array. */
  statesKind?: (isArray: boolean) => void;
  /** Each element of "states", in order, as JSON text (only when set). */
  state?: (json: string, index: number) => void;
}

export interface ScanResult {
  /** Number of elements of "states" (0 when there is no array). */
  states: number;
  statesIsArray: boolean;
  topKeys: string[];
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Scans one JSON object read through `read` (fills the buffer, returns the bytes read, 0 at
 * the end). Errors name the file and the byte offset.
 */
export function scanItf(fileName: string, read: (buf: Buffer) => number, h: ScanHandlers, chunkSize = 1 << 18): ScanResult {
  const fail = (msg: string): never => {
    throw new ItfError(`${fileName}: not valid JSON: ${msg}`);
  };
  // Where we are in the top-level object.
  type Phase = "start" | "key" | "colon" | "value" | "comma" | "done";
  let phase = "start" as Phase;
  let key = "";
  // Inside "states": the array's own phase.
  let inStates = false;
  let statesPhase = "first" as "first" | "elem" | "comma";
  let count = 0;
  let statesIsArray = false;
  const topKeys: string[] = [];

  // The value being skipped or captured.
  interface Val { kind: "container" | "string" | "scalar" | "key"; nest: number; inStr: boolean; esc: boolean; capture: boolean; parts: Buffer[]; from: number; target: "top" | "state" | "key" }
  let val = null as Val | null;
  let offset = 0;

  const startValue = (buf: Buffer, i: number, b: number, target: "top" | "state" | "key", capture: boolean) => {
    const kind = target === "key" ? "key" : b === 0x7b || b === 0x5b ? "container" : b === QUOTE ? "string" : "scalar";
    val = { kind, nest: kind === "container" ? 1 : 0, inStr: kind === "string" || kind === "key", esc: false, capture, parts: [], from: i, target };
    if (kind === "key" && b !== QUOTE) fail(`expected a quoted key at byte ${offset + i}`);
  };
  const finishValue = (buf: Buffer, end: number) => {
    const v = val!;
    val = null;
    let text = "";
    if (v.capture) {
      v.parts.push(buf.subarray(v.from, end));
      text = v.parts.length === 1 ? v.parts[0]!.toString("utf8") : Buffer.concat(v.parts).toString("utf8");
    }
    if (v.target === "key") {
      try {
        key = JSON.parse(text) as string;
      } catch (e) {
        fail(`bad key at byte ${offset + end}: ${(e as Error).message}`);
      }
      topKeys.push(key);
      phase = "colon";
    } else if (v.target === "top") {
      if (v.capture) h.top?.(key, text);
      phase = "comma";
    } else {
      if (v.capture) h.state?.(text, count);
      count++;
      statesPhase = "comma";
    }
  };

  const buf = Buffer.allocUnsafe(chunkSize);
  for (;;) {
    const n = read(buf);
    if (n === 0) break;
    for (let i = 0; i < n; i++) {
      const b = buf[i]!;
      if (val !== null) {
        const v: Val = val;
        if (v.inStr) {
          if (v.esc) v.esc = false;
          else if (b === BACKSLASH) v.esc = true;
          else if (b === QUOTE) {
            v.inStr = false;
            if (v.kind !== "container") finishValue(buf, i + 1);
          } else if (b < 0x20) fail(`control character in a string at byte ${offset + i}`);
          continue;
        }
        if (v.kind === "container") {
          if (b === QUOTE) v.inStr = true;
          else if (b === 0x7b || b === 0x5b) {
            if (++v.nest > MAX_ITF_DEPTH) fail(`nested more than ${MAX_ITF_DEPTH} levels deep at byte ${offset + i}`);
          } else if (b === 0x7d || b === 0x5d) {
            if (--v.nest === 0) finishValue(buf, i + 1);
          }
          continue;
        }
        // A scalar ends at a delimiter, which its parent then reads.
        if (!(WS.has(b) || b === 0x2c || b === 0x7d || b === 0x5d)) continue;
        finishValue(buf, i);
      }
      if (WS.has(b)) continue;
      if (inStates) {
        if (b === 0x5d && statesPhase === "elem") fail(`a ',' before ']' at byte ${offset + i}`);
        if (b === 0x5d) {
          inStates = false;
          phase = "comma";
        } else if (statesPhase === "comma") {
          if (b !== 0x2c) fail(`expected ',' or ']' between states at byte ${offset + i}`);
          statesPhase = "elem";
        } else {
          startValue(buf, i, b, "state", !!h.state);
        }
        continue;
      }
      switch (phase) {
        case "start":
          if (b === 0xef && offset + i === 0) {
            i += 2; // UTF-8 byte order mark
            continue;
          }
          if (b !== 0x7b) throw new ItfError(`${fileName}: (top level): expected a JSON object with "vars" and "states"`);
          phase = "key";
          break;
        case "key":
          if (b === 0x7d && topKeys.length === 0) phase = "done";
          else startValue(buf, i, b, "key", true);
          break;
        case "colon":
          if (b !== 0x3a) fail(`expected ':' after "${key}" at byte ${offset + i}`);
          phase = "value";
          break;
        case "value":
          if (key === "states") {
            statesIsArray = b === 0x5b;
            h.statesKind?.(statesIsArray);
            if (statesIsArray) {
              inStates = true;
              statesPhase = "first";
              break;
            }
          }
          startValue(buf, i, b, "top", key !== "states" && (h.wantTop?.(key) ?? false));
          break;
        case "comma":
          if (b === 0x7d) phase = "done";
          else if (b === 0x2c) phase = "key";
          else fail(`expected ',' or '}' at byte ${offset + i}`);
          break;
        case "done":
          fail(`unexpected data after the end at byte ${offset + i}`);
      }
    }
    // The buffer is reused: a value that goes on keeps a copy of its bytes so far.
    if (val !== null && val.capture) val.parts.push(Buffer.from(buf.subarray(val.from, n)));
    if (val !== null) val.from = 0;
    offset += n;
  }
  if (phase !== "done") fail(offset === 0 ? "the file is empty" : "unexpected end of the file");
  return { states: count, statesIsArray, topKeys };
}
