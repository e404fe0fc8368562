// A module resolve hook, registered after tsx's (so it runs on tsx's answer): spec files
// and their helpers are ES modules even in a project whose package.json says
// "type": "commonjs" (what `npm init -y` writes), where tsx would compile them to CommonJS
// and `import ... from "refcheck"` would fail with "Cannot require() ES Module".
import type { ResolveHook } from "node:module";

const typescript = /\.(ts|tsx)$/;

export const resolve: ResolveHook = async (specifier, context, next) => {
  const r = await next(specifier, context);
  if (!r.url.startsWith("file:") || r.url.includes("/node_modules/") || !typescript.test(new URL(r.url).pathname)) return r;
  const format = r.format as string | null | undefined;
  if (format === "commonjs") return { ...r, format: "module" };
  if (format === "commonjs-typescript") return { ...r, format: "module-typescript" as "module" };
  return r;
};
