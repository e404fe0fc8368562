#!/usr/bin/env node
// Launcher: runs the TypeScript command line through tsx (no build step).
import { register } from "tsx/esm/api";

register();
await import("./refcheck.ts");
