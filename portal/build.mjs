// Bundle the portal into ../coastlake/server/portal_static (served by `lake serve` at / and /static).
// No CDN: MapLibre GL, its CSS and uPlot are bundled from node_modules.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";

const out = new URL("../coastlake/server/portal_static/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020"],
  outfile: `${out}portal.js`,
  loader: { ".css": "css" },
  logLevel: "warning",
});
cpSync("src/index.html", `${out}index.html`);
console.log(`portal built into ${out}`);
