// Registered before tsx: runs in Node's module loader thread, where refcheck.mjs's own
// handlers do not reach. There, an unhandled error ends the process with exit 1 and no word
// (read as "a property is violated"). tsx starts its WebAssembly lexer there without
// awaiting it and falls back to a JavaScript one when it cannot (no memory under a tight
// `ulimit -v`): that rejection is harmless. Anything else is an internal error, exit 4.
import { writeSync } from "node:fs";

const internal = (e) => {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 300);
  writeSync(2, `refcheck: internal error in the module loader: ${msg}\nThis is not a problem with your spec (REFCHECK_DEBUG=1 prints the stack).\n`);
  if (process.env.REFCHECK_DEBUG && e instanceof Error) writeSync(2, `${e.stack}\n`);
  process.exit(4);
};
process.on("unhandledRejection", (e) => {
  if (e instanceof RangeError && /WebAssembly/.test(e.message)) return;
  internal(e);
});
process.on("uncaughtException", internal);
