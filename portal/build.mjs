// Bundle the portal into ../coastlake/server/portal_static (served by `lake serve` at / and /static).
// No CDN: MapLibre GL, its CSS, uPlot and the Natural Earth land are bundled from node_modules.
import { build } from "esbuild";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { feature } from "topojson-client";

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
// Land and coastline: Natural Earth 1:50m (public domain) from the world-atlas package, as
// GeoJSON the map style loads from /static (no tile server, no CDN).
const land = JSON.parse(readFileSync("node_modules/world-atlas/land-50m.json", "utf8"));
writeFileSync(`${out}land-50m.geojson`, JSON.stringify(feature(land, land.objects.land)));
console.log(`portal built into ${out}`);
