// The coastlake portal: real-time and historical station maps, grid layers with a time slider,
// dataset search, and dataset pages with metadata, QC summary, a plot and download links.
// Everything comes from this server's own JSON (/api/...); no external tiles, fonts or CDN.
import maplibregl from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";

const GREY = "#9e9e9e";
const HISTORICAL = "#0b6e99";
const RAMP = ["#313695", "#4575b4", "#74add1", "#fee090", "#f46d43", "#a50026"];
const FLAG_NAMES = { 1: "pass", 2: "not evaluated", 3: "suspect", 4: "fail", 9: "missing" };

const state = { mode: "realtime", stations: [], variable: null, range: [0, 1], grids: [], ready: false };
window.coastlake = state;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function hexToRgb(h) { return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)); }
function rampColour(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const a = hexToRgb(RAMP[i]), b = hexToRgb(RAMP[i + 1]), f = x - i;
  return "#" + a.map((v, k) => Math.round(v + (b[k] - v) * f).toString(16).padStart(2, "0")).join("");
}

/** The colour a station gets on the current map: by latest value, grey when stale. */
function colourFor(p) {
  if (state.mode === "historical") return HISTORICAL;
  if (p.state === "stale") return GREY;
  const v = p[`v_${state.variable}`];
  if (v === undefined || v === null) return "#555555";
  const [lo, hi] = state.range;
  return rampColour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
}

function visible(p) {
  return state.mode === "historical" || p.state === "active" || p.state === "stale";
}

function graticule() {
  const lines = [];
  for (let lon = -180; lon <= 180; lon += 5) lines.push([[lon, -85], [lon, 85]]);
  for (let lat = -80; lat <= 80; lat += 5) lines.push([[-180, lat], [180, lat]]);
  return { type: "FeatureCollection", features: lines.map((c) => ({ type: "Feature", geometry: { type: "LineString", coordinates: c }, properties: {} })) };
}

const map = new maplibregl.Map({
  container: "map",
  style: {
    version: 8,
    sources: {
      graticule: { type: "geojson", data: graticule() },
      // Natural Earth 1:50m land (world-atlas), written into /static by the build
      land: { type: "geojson", data: "/static/land-50m.geojson", attribution: "Natural Earth" },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#dbe9f2" } },
      { id: "land", type: "fill", source: "land", paint: { "fill-color": "#f2efe6" } },
      { id: "graticule", type: "line", source: "graticule", paint: { "line-color": "#b5cbd8", "line-width": 0.6 } },
      { id: "coastline", type: "line", source: "land", paint: { "line-color": "#6b8797", "line-width": 0.9 } },
    ],
  },
  center: [-70, 42.5],
  zoom: 5,
  attributionControl: false,
});
map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
state.map = map;

function stationCollection() {
  return {
    type: "FeatureCollection",
    features: state.stations
      .filter((f) => visible(f.properties))
      .map((f) => ({ ...f, properties: { ...f.properties, color: colourFor(f.properties) } })),
  };
}

function variablesOf(stations) {
  const names = new Set();
  for (const f of stations) for (const k of Object.keys(f.properties)) if (k.startsWith("v_")) names.add(k.slice(2));
  return [...names].sort();
}

function updateRange() {
  const vals = state.stations
    .filter((f) => f.properties.state === "active")
    .map((f) => f.properties[`v_${state.variable}`])
    .filter((v) => typeof v === "number");
  state.range = vals.length ? [Math.min(...vals), Math.max(...vals)] : [0, 1];
}

function drawLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  if (state.mode === "historical") {
    legend.append(el("div", {}, el("span", { class: "dot", style: `background:${HISTORICAL}` }), "every station ever seen"));
    return;
  }
  const [lo, hi] = state.range;
  legend.append(
    el("div", {}, `${state.variable || "latest value"}: ${lo.toFixed(1)} … ${hi.toFixed(1)}`),
    el("div", { class: "ramp" }),
    el("div", {}, el("span", { class: "dot", style: `background:${GREY}` }), "no data for 4 hours (gone after a week)"),
  );
}

function drawStationList() {
  const list = document.getElementById("station-list");
  list.replaceChildren();
  for (const f of stationCollection().features) {
    const p = f.properties;
    list.append(
      el("li", { "data-station": p.station_id, "data-state": p.state, "data-color": p.color, onclick: () => openDataset(p.dataset_id, p.station_id) },
        el("span", { class: "dot", style: `background:${p.color}` }), `${p.name} (${p.state}, ${p.last_time ?? "never"})`),
    );
  }
}

function refresh() {
  const src = map.getSource("stations");
  if (src) src.setData(stationCollection());
  drawLegend();
  drawStationList();
  drawEmptyNotice();
}

/** An empty real-time map says why (nothing reported lately) and offers the history. */
function drawEmptyNotice() {
  const notice = document.getElementById("empty-notice");
  const empty = state.mode === "realtime" && state.stations.length > 0 && stationCollection().features.length === 0;
  notice.hidden = !empty;
  if (!empty) return;
  const times = state.stations.map((f) => f.properties.last_time).filter(Boolean).sort();
  const newest = times.length ? times[times.length - 1] : "never";
  notice.replaceChildren(
    el("p", {}, `No station has reported in the last week, so the real-time map is empty. The newest value in the lake is from ${newest}.`),
    el("button", { id: "show-historical", onclick: () => document.getElementById("mode-historical").click() }, "Show the historical map"),
  );
}

async function loadStations() {
  const fc = await getJSON("/api/stations");
  state.stations = fc.features;
  const select = document.getElementById("colour-variable");
  const names = variablesOf(state.stations);
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n.replaceAll("_", " "))));
  state.variable = names.includes("sea_water_temperature") ? "sea_water_temperature" : names[0] ?? null;
  if (state.variable) select.value = state.variable;
  updateRange();
}

function fitStations() {
  const pts = stationCollection().features.map((f) => f.geometry.coordinates);
  if (!pts.length) return;
  const bounds = pts.reduce((b, c) => b.extend(c), new maplibregl.LngLatBounds(pts[0], pts[0]));
  map.fitBounds(bounds, { padding: 80, maxZoom: 8, duration: 0 });
}

async function loadGrids() {
  try { state.grids = await getJSON("/api/grids"); } catch { state.grids = []; }
  if (!state.grids.length) return;
  const panel = document.getElementById("grid-panel");
  const select = document.getElementById("grid-layer");
  const slider = document.getElementById("grid-time");
  panel.hidden = false;
  select.replaceChildren(el("option", { value: "" }, "(none)"), ...state.grids.map((g, i) => el("option", { value: String(i) }, g.title || g.id)));
  const show = () => {
    if (map.getLayer("grid")) map.removeLayer("grid");
    if (map.getSource("grid")) map.removeSource("grid");
    const g = state.grids[Number(select.value)];
    if (select.value === "" || !g) return;
    const times = g.times || [];
    slider.max = String(Math.max(0, times.length - 1));
    const t = times[Number(slider.value)] ?? "";
    document.getElementById("grid-time-label").textContent = t;
    map.addSource("grid", { type: "raster", tiles: [location.origin + g.tiles.replace("{time}", encodeURIComponent(t))], tileSize: 256 });
    map.addLayer({ id: "grid", type: "raster", source: "grid", paint: { "raster-opacity": 0.8 } }, "stations");
  };
  select.addEventListener("change", () => { slider.value = "0"; show(); });
  slider.addEventListener("input", show);
}

async function loadLayers() {
  try { state.layers = await getJSON("/api/layers"); } catch { state.layers = []; }
  if (!state.layers.length) return;
  document.getElementById("layer-panel").hidden = false;
  const list = document.getElementById("layer-list");
  for (const layer of state.layers) {
    const box = el("input", { type: "checkbox", "data-layer": layer.id });
    box.addEventListener("change", async () => {
      const id = `layer-${layer.id}`;
      if (!box.checked) {
        for (const suffix of ["-fill", "-line"]) if (map.getLayer(id + suffix)) map.removeLayer(id + suffix);
        if (map.getSource(id)) map.removeSource(id);
        return;
      }
      map.addSource(id, { type: "geojson", data: await getJSON(layer.url) });
      map.addLayer({ id: `${id}-fill`, type: "fill", source: id, paint: { "fill-color": "#c8b88a", "fill-opacity": 0.35 } }, "stations");
      map.addLayer({ id: `${id}-line`, type: "line", source: id, paint: { "line-color": "#7a6a3a", "line-width": 1 } }, "stations");
      const [w, s, e, n] = layer.bbox;
      map.fitBounds([[w, s], [e, n]], { padding: 40, duration: 0 });
    });
    list.append(el("li", {}, el("label", {}, box, ` ${layer.title} (${layer.features} features)`)));
  }
}

async function search(q) {
  const list = document.getElementById("dataset-list");
  const found = await getJSON(`/api/datasets?q=${encodeURIComponent(q)}`);
  list.replaceChildren(...found.map((d) => el("li", { "data-dataset": d.dataset_id, onclick: () => openDataset(d.dataset_id) }, d.title)));
  if (!found.length) list.append(el("li", {}, "no dataset matches"));
}

function row(k, v) { return el("tr", {}, el("th", {}, k), el("td", {}, v)); }

async function openDataset(datasetId, stationId) {
  location.hash = `#/dataset/${encodeURIComponent(datasetId)}${stationId ? `/${encodeURIComponent(stationId)}` : ""}`;
}

async function showDataset(datasetId, stationId) {
  const page = document.getElementById("dataset-page");
  const body = document.getElementById("dataset-body");
  page.hidden = false;
  body.replaceChildren(el("p", {}, "loading…"));
  const d = await getJSON(`/api/datasets/${encodeURIComponent(datasetId)}`);
  const station = stationId || d.stations[0]?.station_id;
  const variables = Object.keys(d.units);
  const qc = el("table", { id: "qc-summary" }, ...Object.entries(d.qc).map(([k, v]) => row(k, v.toLocaleString())));
  const varSelect = el("select", { id: "plot-variable" }, ...variables.map((v) => el("option", { value: v }, `${v} (${d.units[v]})`)));
  if (variables.includes("sea_water_temperature")) varSelect.value = "sea_water_temperature";
  const stationSelect = el("select", { id: "plot-station" }, ...d.stations.map((s) => el("option", { value: s.station_id }, s.station_id)));
  if (station) stationSelect.value = station;
  const plotBox = el("div", { id: "plot" });
  const downloads = el("div", { class: "downloads", id: "downloads" });
  body.replaceChildren(
    el("h1", {}, d.title),
    el("p", {}, d.summary),
    el("table", { id: "metadata" },
      row("dataset id", d.dataset_id),
      row("provider", d.provider ? d.provider.name : d.institution),
      row("category", d.category ?? ""),
      row("license", d.license),
      row("citation", d.citation),
      row("Data Stream Plan", el("span", {},
        el("a", { id: "stream-plan", href: `/plans/${encodeURIComponent(d.dataset_id)}.html` }, "generated plan"),
        ...(d.provider_plan ? [" · ", el("a", { href: d.provider_plan }, "provider's plan")] : []))),
      row("attribution", `Data: ${d.provider ? d.provider.name : d.institution}; served by coastlake`),
      row("keywords", d.keywords.join(", ")),
      row("time", `${d.time_start ?? "?"} … ${d.time_end ?? "?"}`),
      row("variables", variables.map((v) => `${v} [${d.units[v]}]`).join(", ")),
      row("sources", (d.sources ?? []).map((s) =>
        `${s.source ?? "unnamed"} (rank ${s.rank ?? 0}): ${s.values} values, ${s.first ?? "?"} … ${s.last ?? "?"}`,
      ).join("; ")),
      row("which value wins", Object.entries(d.source_priority ?? {}).sort((a, b) => a[1] - b[1])
        .map(([name, rank]) => `${name} ${rank}`).join(" < ") + " (a higher rank replaces a lower one)"),
    ),
    el("h2", {}, "Quality control (values by QARTOD flag)"), qc,
    el("h2", {}, "Time series"),
    el("div", {}, "station ", stationSelect, " variable ", varSelect, " ", el("span", { class: "flagged" }, "● failed/suspect QC")),
    plotBox,
    el("h2", {}, "Download"), downloads,
  );
  const draw = async () => {
    const s = stationSelect.value, v = varSelect.value;
    const base = `/data/stations/${encodeURIComponent(datasetId)}`;
    const q = `station=${encodeURIComponent(s)}&variables=${encodeURIComponent(v)}`;
    downloads.replaceChildren(
      ...["nc", "csv", "json", "parquet"].map((f) => el("a", { href: `${base}.${f}?${q}` }, f.toUpperCase())),
      el("a", { href: `/erddap/tabledap/${datasetId}.htmlTable?station,time,${v},${v}_qc_agg&station=%22${encodeURIComponent(s)}%22` }, "ERDDAP table"),
    );
    const ser = await getJSON(`/api/series/${encodeURIComponent(datasetId)}?${q.replace("variables=", "variable=")}`);
    const good = ser.value.map((x, i) => (ser.qc[i] === 3 || ser.qc[i] === 4 ? null : x));
    const bad = ser.value.map((x, i) => (ser.qc[i] === 3 || ser.qc[i] === 4 ? x : null));
    plotBox.replaceChildren();
    const opts = {
      width: Math.min(1000, window.innerWidth - 80), height: 320,
      series: [
        {},
        { label: `${v} (${ser.units})`, stroke: "#0b6e99", spanGaps: true },
        { label: "flagged", stroke: "#d62728", width: 0, points: { show: true, size: 7, fill: "#d62728" } },
      ],
      axes: [{}, { label: ser.units }],
    };
    state.plot = new uPlot(opts, [ser.time, good, bad], plotBox);
    state.plotPoints = ser.time.length;
    state.plotFlagged = bad.filter((x) => x !== null).length;
    plotBox.setAttribute("data-points", String(ser.time.length));
    plotBox.setAttribute("data-flagged", String(state.plotFlagged));
  };
  stationSelect.addEventListener("change", draw);
  varSelect.addEventListener("change", draw);
  if (station && variables.length) await draw();
}

async function route() {
  const m = location.hash.match(/^#\/dataset\/([^/]+)(?:\/(.+))?$/);
  if (m) await showDataset(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : undefined);
  else document.getElementById("dataset-page").hidden = true;
}

document.getElementById("close-dataset").addEventListener("click", () => { location.hash = ""; });
document.getElementById("search").addEventListener("input", (e) => search(e.target.value));
document.getElementById("colour-variable").addEventListener("change", (e) => { state.variable = e.target.value; updateRange(); refresh(); });
for (const b of document.querySelectorAll("#modes button")) {
  b.addEventListener("click", () => {
    state.mode = b.dataset.mode;
    for (const o of document.querySelectorAll("#modes button")) o.classList.toggle("active", o === b);
    refresh();
    fitStations();
  });
}
window.addEventListener("hashchange", route);

map.on("load", async () => {
  await loadStations();
  map.addSource("stations", { type: "geojson", data: stationCollection() });
  map.addLayer({
    id: "stations", type: "circle", source: "stations",
    paint: { "circle-radius": 8, "circle-color": ["get", "color"], "circle-stroke-color": "#222", "circle-stroke-width": 1 },
  });
  map.on("click", "stations", (e) => { const p = e.features[0].properties; openDataset(p.dataset_id, p.station_id); });
  map.on("mouseenter", "stations", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "stations", () => { map.getCanvas().style.cursor = ""; });
  refresh();
  fitStations();
  await Promise.all([search(""), loadGrids(), loadLayers()]);
  map.once("idle", () => { state.ready = true; });
  map.triggerRepaint();
  await route();
});
