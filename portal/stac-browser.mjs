// Build STAC Browser (Radiant Earth, from npm) into ../coastlake/server/portal_static/stac-browser,
// served by `lake serve` at /stac-browser/ and pointed at the lake's own STAC API by a
// config.js the server writes (so the catalog URL is the server's public address).
//
// The npm package is STAC Browser's source; it builds with its own dev tools, so it is unpacked
// and built in node_modules/.stac-browser (kept between builds: a second run only copies).
// Pinned: the version, and ol-stac 1.5.1 (later ol-stac releases do not build with 4.0.1).
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const VERSION = "4.0.1";
const OL_STAC = "1.5.1";
const work = new URL(`./node_modules/.stac-browser/${VERSION}/`, import.meta.url).pathname;
const dist = `${work}dist/`;
const out = new URL("../coastlake/server/portal_static/stac-browser/", import.meta.url).pathname;
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"], ...opts });

if (!existsSync(`${dist}index.html`)) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  run("npm", ["pack", `@radiantearth/stac-browser@${VERSION}`, "--silent"], { cwd: work });
  run("tar", ["xzf", `radiantearth-stac-browser-${VERSION}.tgz`], { cwd: work });
  const src = `${work}package/`;
  const pkg = JSON.parse(readFileSync(`${src}package.json`, "utf8"));
  pkg.dependencies["ol-stac"] = OL_STAC;
  writeFileSync(`${src}package.json`, JSON.stringify(pkg, null, 2));
  // Load the runtime configuration (window.STAC_BROWSER_CONFIG) the server writes.
  const index = `${src}public/index.html`;
  writeFileSync(
    index,
    readFileSync(index, "utf8").replace(
      '<!-- <script defer="defer" src="/config.js"></script> -->',
      '<script src="<%= BASE_URL %>config.js"></script>',
    ),
  );
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: src });
  run("npx", ["vue-cli-service", "build", "--dest", dist], {
    cwd: src,
    env: {
      ...process.env,
      SB_pathPrefix: "/stac-browser/",
      SB_historyMode: "hash",
      SB_catalogTitle: "coastlake",
      SB_noSourceMaps: "true",
    },
  });
}
rmSync(out, { recursive: true, force: true });
cpSync(dist, out, { recursive: true });
rmSync(`${out}config.js`, { force: true }); // the server answers /stac-browser/config.js
console.log(`STAC Browser ${VERSION} copied into ${out}`);
