// The type check on a thread of its own (typecheck.ts:typecheckSpecsIsolated): the
// compiler's heap goes away with the thread.
import { parentPort, workerData } from "node:worker_threads";
import { typecheckSpecs, type TypecheckOptions } from "./typecheck.ts";

const { files, opts } = workerData as { files: string[]; opts: TypecheckOptions };
parentPort!.postMessage(await typecheckSpecs(files, opts));
