// Bundles every widget entry in src/ into ../prisma_widgets/static/.
//
// For each entry `src/<name>.ts` this writes
//   <name>.js             ES module for anywidget (`export default { render }`), everything bundled
//   <name>.css            the widget's styles (shared theme included), loaded by anywidget as `_css`
//   <name>.standalone.js  the same code as a classic script that registers itself on
//                         `globalThis.__prisma_widgets[<name>]`; `save_html` inlines it (no module loading,
//                         works from file:// and inside sandboxed iframes)
//
// Usage: node build.mjs [--watch] [--dev]
import * as esbuild from "esbuild";
import { readdirSync, mkdirSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "prisma_widgets", "static");
const watch = process.argv.includes("--watch");
const dev = process.argv.includes("--dev") || watch;

const entries = readdirSync(join(here, "src"))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
  .map((f) => basename(f, ".ts"));

mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  target: ["es2020", "chrome90", "firefox90", "safari15"],
  logLevel: "info",
  legalComments: "none",
  // Nothing is fetched at run time: no externals, no CDN.
};

const builds = [];
for (const name of entries) {
  const entry = join(here, "src", `${name}.ts`);
  builds.push({
    ...common,
    entryPoints: { [name]: entry },
    outdir,
    format: "esm",
  });
  builds.push({
    ...common,
    entryPoints: { [`${name}.standalone`]: join(here, "src", "shared", "standalone_entry.ts") },
    outdir,
    format: "iife",
    // The standalone entry imports the widget through this alias.
    alias: { "pw-widget-entry": entry },
    define: { __PW_WIDGET_NAME__: JSON.stringify(name) },
    // The CSS is inlined separately by save_html; drop the duplicate.
    loader: { ".css": "empty" },
  });
}

if (watch) {
  for (const b of builds) {
    const ctx = await esbuild.context(b);
    await ctx.watch();
  }
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
