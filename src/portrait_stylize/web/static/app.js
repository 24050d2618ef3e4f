// The page: a form that builds POST /api/jobs (with what the tool finds in the photo, an
// instant preview and how long it will take, before it starts), a job view fed by
// server-sent events with a before/after view of the result, and the history from
// GET /api/jobs. Plain JS; the API is the one in docs/web.md.
"use strict";

const $ = (id) => document.getElementById(id);
const MAIN_FIELDS = ["size", "style_weight", "identity", "style_strength", "preserve_colors", "background"];
const MAIN_INPUTS = { background: "background-mode" };
const FINISHED = ["done", "failed", "cancelled"];
const THIS_COMPUTER = "on this computer";
const MEASURING = "The first painting on this computer also measures its speed (a minute or so more).";
const RETRY_ESTIMATE_MS = 10000;

// Each method in plain words: [title, what the picture will look like]. The schema's
// description and notes (with the CLI's names) are shown under Advanced settings only.
const PLAIN = {
  "portrait-painting": ["Painted portrait (recommended)",
    "the whole picture painted like the artwork, each person kept recognisable"],
  "instant": ["Instant preview",
    "a painted look in a second; the face often looks less like the person"],
  "portrait-stylization": ["Paper 2 (Portrait Stylization)",
    "the paper's method: painted like the artwork while a face-recognition network keeps each face the person's; the background may break into blocks"],
  "crowson": ["Paper 2's starting point (Crowson)",
    "painted like the artwork, growing from small to full size; faces get no special care"],
  "portrait-aware": ["Paper 1 (portrait-aware)",
    "the background painted in full, the person only in the artwork's broad strokes and colours"],
  "gatys": ["Paper 1's baseline (Gatys)",
    "the classic style transfer: the artwork's texture everywhere, faces get no special care"],
  "gatys-plus": ["Paper 1's stronger baseline (Gatys+)",
    "the classic style transfer with a much stronger style; faces are often lost"],
};

const state = {
  schema: null, photo: null, paintings: [], job: null, events: null, poll: null,
  inspected: null, inspectRun: 0, instantRun: 0, timers: new Map(),
  look: null, estimateRun: 0, estimateRetry: null, faces: new Map(), jobEstimate: null,
};

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(body && body.error ? body.error : response.statusText);
  return body;
}

function thumb(item, onRemove) {
  const box = document.createElement("div");
  box.className = "thumb";
  const img = document.createElement("img");
  img.src = URL.createObjectURL(item.blob);
  img.alt = item.name;
  box.append(img);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "×";
  remove.title = "remove " + item.name;
  remove.onclick = onRemove;
  box.append(remove);
  return box;
}

function showInputs() {
  $("photo-thumbs").replaceChildren(...(state.photo ? [thumb(state.photo, () => { state.photo = null; showInputs(); })] : []));
  $("painting-thumbs").replaceChildren(...state.paintings.map((p, i) =>
    thumb(p, () => { state.paintings.splice(i, 1); showInputs(); })));
  if (state.inspected !== state.photo) inspectPhoto();
  instantPreview();
}

// --- before it runs: the faces and person found, an instant preview ---------------------

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function inspectSummary(found) {
  const faces = found.face_count ? `${plural(found.face_count, "face")} found` : "no face found";
  const small = found.faces.length - found.face_count;
  const unused = small ? ` (and ${small} too small to use)` : "";
  const percent = Math.round(found.person_fraction * 100);
  const person = percent ? `person covers ${percent} % of the picture` : "no person found";
  return `${faces}${unused}, ${person}`;
}

async function inspectPhoto() {
  state.inspected = state.photo;
  const run = ++state.inspectRun;
  $("inspect").hidden = !state.photo;
  $("inspect-overlay").hidden = true;
  state.look = null;
  later(updateEstimates);
  if (!state.photo) return;
  $("inspect-summary").textContent = "finding the faces and the person…";
  const form = new FormData();
  form.append("content", state.photo.blob, state.photo.name);
  form.append("settings", JSON.stringify(collectSettings()));
  try {
    const found = await api("/api/inspect", { method: "POST", body: form });
    if (run !== state.inspectRun) return;
    $("inspect-overlay").src = found.overlay;
    $("inspect-overlay").hidden = false;
    $("inspect-summary").textContent = inspectSummary(found);
    state.look = { photo: state.photo, size: found.size, faces: found.faces.filter((f) => f.used) };
    later(updateEstimates);
  } catch (error) {
    if (run === state.inspectRun) $("inspect-summary").textContent = error.message;
  }
}

function instantStrength() {
  return applies("style_strength") ? $("style_strength").value : "1";
}

async function instantPreview() {
  const run = ++state.instantRun;
  const ready = Boolean(state.photo) && state.paintings.length > 0;
  $("instant").hidden = !ready;
  if (!ready) return;
  $("instant-caption").textContent = "painting an instant preview…";
  const form = new FormData();
  form.append("content", state.photo.blob, state.photo.name);
  for (const painting of state.paintings) form.append("style", painting.blob, painting.name);
  form.append("style_strength", instantStrength());
  try {
    const response = await fetch("/api/instant", { method: "POST", body: form });
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const blob = await response.blob();
    if (run !== state.instantRun) return;
    const img = $("instant-preview");
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
    $("instant-caption").textContent = "instant preview: roughly how the painting will look (256 px)";
  } catch (error) {
    if (run === state.instantRun) $("instant-caption").textContent = error.message;
  }
}

// --- how long it will take: POST /api/estimate -------------------------------------------

// "about 3 min", "about a second", "about 1.5 hours".
function duration(seconds) {
  if (seconds < 1.5) return "about a second";
  if (seconds < 50) return `about ${Math.max(5, Math.round(seconds / 5) * 5)} seconds`;
  if (seconds < 90) return "about a minute";
  if (seconds < 5400) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1).replace(/\.0$/, "")} hours`;
}

function plainTitle(method) {
  return (PLAIN[method] || [method])[0];
}

// The photo the estimate is for: the chosen one's size and usable faces once the quick
// look has them, else a square photo of one person.
function estimatePhoto() {
  const look = state.look && state.look.photo === state.photo ? state.look : null;
  if (!look) return { width: 1024, height: 1024, faces: 1, known: false };
  return { width: look.size[0], height: look.size[1], faces: look.faces.length, known: true };
}

async function estimateFor(settings, photo) {
  const body = { settings, width: photo.width, height: photo.height, faces: photo.faces };
  return api("/api/estimate", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

// The time beside Start (for the form's settings), in the method's plain description, and
// in the method menu (each method at its defaults and the form's size).
async function updateEstimates() {
  if (!state.schema) return;
  const run = ++state.estimateRun;
  clearTimeout(state.estimateRetry);
  const photo = estimatePhoto();
  const chosen = $("method").value;
  const size = $("size").value === "" ? {} : { size: parseInt($("size").value, 10) };
  const option = (method) => [...$("method").options].find((o) => o.value === method);
  const label = (method, found) =>
    plainTitle(method) + (found && found.seconds !== null ? ` · ${duration(found.seconds)}` : "");
  const others = Object.keys(state.schema.methods).filter((m) => m !== chosen).map(async (method) => {
    try {
      const found = await estimateFor({ method, ...size }, photo);
      if (run === state.estimateRun) option(method).textContent = label(method, found);
    } catch (error) {
      if (run === state.estimateRun) option(method).textContent = label(method, null);
    }
  });
  try {
    const found = await estimateFor(collectSettings(), photo);
    if (run !== state.estimateRun) return;
    option(chosen).textContent = label(chosen, found);
    showEstimate(found, photo);
    if (found.seconds === null) state.estimateRetry = setTimeout(updateEstimates, RETRY_ESTIMATE_MS);
  } catch (error) {
    if (run !== state.estimateRun) return;
    option(chosen).textContent = label(chosen, null);
    showEstimate(null, photo, error.message);
  }
  await Promise.all(others);
}

function showEstimate(found, photo, problem = "") {
  const box = $("estimate");
  box.classList.toggle("error", Boolean(problem));
  const [title, text] = PLAIN[$("method").value] || [$("method").value, ""];
  let time = "";
  if (problem) box.textContent = problem;
  else if (found.seconds === null) box.textContent = MEASURING;
  else {
    time = `${duration(found.seconds)} ${THIS_COMPUTER}`;
    box.textContent = time + (photo.known ? "" : " (for a photo of one person)");
  }
  $("method-help").textContent = `${title}: ${text}` + (time ? ` — ${time}.` : ".");
}

// Run ``action`` (inspect, preview, estimate) again once the settings it reads have settled.
function later(action) {
  clearTimeout(state.timers.get(action));
  state.timers.set(action, setTimeout(action, 300));
}

async function fetchBlob(url, name) {
  const response = await fetch(url);
  if (!response.ok) throw new Error("cannot fetch " + name);
  return { blob: await response.blob(), name };
}

// --- the form -------------------------------------------------------------------------

function field(name) {
  return state.schema.fields.find((f) => f.name === name);
}

function methodDefault(name) {
  return field(name).defaults[$("method").value];
}

// The value a setting will have: the advanced field's when given, else the method's default.
function chosen(name) {
  const input = $("advanced-fields").querySelector(`[data-field="${name}"]`);
  return input && input.value !== "" ? input.value : String(methodDefault(name));
}

// Whether the chosen method reads a setting: it is one of the field's methods, or another
// setting has the value that makes it read (the schema's also_when, e.g. init instant).
function applies(name) {
  const entry = field(name);
  if (entry.methods.includes($("method").value)) return true;
  return Object.entries(entry.also_when || {}).some(([other, value]) => applies(other) && chosen(other) === value);
}

function mainLabel(name) {
  return $(MAIN_INPUTS[name] || name).closest("label");
}

function showKnobs() {
  for (const name of MAIN_FIELDS) mainLabel(name).hidden = !applies(name);
  for (const group of $("advanced-fields").querySelectorAll("fieldset")) {
    let shown = 0;
    for (const label of group.querySelectorAll("label")) {
      label.hidden = !applies(label.querySelector("[data-field]").dataset.field);
      shown += label.hidden ? 0 : 1;
    }
    group.hidden = shown === 0;
  }
}

function showMethod() {
  const name = $("method").value;
  const method = state.schema.methods[name];
  const [title, text] = PLAIN[name] || [name, "(see Advanced settings)"];
  $("method-help").textContent = `${title}: ${text}.`;
  $("method-name").textContent = name;
  $("method-description").textContent = method.description;
  $("method-notes").replaceChildren(
    ...method.notes.map((note) => Object.assign(document.createElement("li"), { textContent: note })),
  );
  for (const name of ["identity", "style_strength"]) {
    $(name).value = methodDefault(name);
    $(name + "-value").textContent = $(name).value;
  }
  for (const name of ["size", "style_weight"]) $(name).placeholder = methodDefault(name);
  for (const input of $("advanced-fields").querySelectorAll("[data-field]")) {
    const value = methodDefault(input.dataset.field);
    const text = value === null ? "unset" : Array.isArray(value) ? value.join(", ") : String(value);
    if (input.tagName === "SELECT") input.options[0].text = `default (${text})`;
    else input.placeholder = text;
  }
  showKnobs();
}

function inputFor(entry) {
  if (entry.type === "boolean" || entry.choices) {
    const select = document.createElement("select");
    select.append(new Option("default", ""));
    for (const choice of entry.type === "boolean" ? ["true", "false"] : entry.choices) {
      select.append(new Option(choice, choice));
    }
    return select;
  }
  const input = document.createElement("input");
  input.type = entry.type === "integer" || entry.type === "number" ? "number" : "text";
  if (input.type === "number") input.step = "any";
  return input;
}

function buildAdvanced() {
  const groups = {};
  for (const [name, description] of Object.entries(state.schema.groups)) {
    const box = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = description;
    box.append(legend);
    groups[name] = box;
  }
  for (const entry of state.schema.fields) {
    if (MAIN_FIELDS.includes(entry.name)) continue;
    const label = document.createElement("label");
    label.title = entry.help;
    const input = inputFor(entry);
    input.dataset.field = entry.name;
    input.dataset.type = entry.type === "array" ? `array of ${entry.items}` : entry.type;
    label.append(entry.name.replaceAll("_", " "), " ", input);
    const help = document.createElement("span");
    help.className = "help";
    help.textContent = entry.help;
    label.append(help);
    groups[entry.group].append(label);
  }
  $("advanced-fields").replaceChildren(...Object.values(groups));
}

function parseValue(text, type) {
  if (type === "boolean") return text === "true";
  if (type === "integer") return parseInt(text, 10);
  if (type === "number") return parseFloat(text);
  if (type.startsWith("array of")) {
    const items = text.split(/[\s,]+/).filter(Boolean);
    return type === "array of string" ? items : items.map(Number);
  }
  return text;
}

function collectSettings() {
  const settings = { method: $("method").value };
  const shown = (name) => !mainLabel(name).hidden;
  for (const name of ["size", "style_weight"]) {
    if (shown(name) && $(name).value !== "") settings[name] = parseValue($(name).value, name === "size" ? "integer" : "number");
  }
  for (const name of ["identity", "style_strength"]) {
    const value = parseFloat($(name).value);
    if (shown(name) && value !== methodDefault(name)) settings[name] = value;
  }
  if (shown("preserve_colors") && $("preserve_colors").checked) settings.preserve_colors = true;
  if (shown("background") && $("background-mode").value === "color") settings.background = "color:" + $("background-color").value;
  for (const input of $("advanced-fields").querySelectorAll("[data-field]")) {
    const shown = !input.closest("label").hidden;
    if (shown && input.value !== "") settings[input.dataset.field] = parseValue(input.value, input.dataset.type);
  }
  return settings;
}

function fillSettings(settings) {
  $("method").value = settings.method;
  showMethod();
  for (const name of ["size", "style_weight"]) $(name).value = settings[name] ?? "";
  for (const name of ["identity", "style_strength"]) {
    if (settings[name] !== undefined) $(name).value = settings[name];
    $(name + "-value").textContent = $(name).value;
  }
  $("preserve_colors").checked = Boolean(settings.preserve_colors);
  const background = settings.background || "keep";
  $("background-mode").value = background.startsWith("color:") ? "color" : "keep";
  $("background-color").hidden = $("background-mode").value !== "color";
  if (background.startsWith("color:")) $("background-color").value = background.slice(6);
  for (const input of $("advanced-fields").querySelectorAll("[data-field]")) {
    const value = settings[input.dataset.field];
    input.value = value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value);
  }
  showKnobs();
}

async function submitJob(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  if (!state.photo || state.paintings.length === 0) {
    $("form-error").textContent = "Choose a photograph and at least one painting.";
    return;
  }
  const form = new FormData();
  form.append("content", state.photo.blob, state.photo.name);
  for (const painting of state.paintings) form.append("style", painting.blob, painting.name);
  form.append("settings", JSON.stringify(collectSettings()));
  $("start").disabled = true;
  try {
    const { id } = await api("/api/jobs", { method: "POST", body: form });
    const look = state.look && state.look.photo === state.photo ? state.look : null;
    if (look && look.faces.length && !state.faces.has(id)) state.faces.set(id, look.faces.map((f) => f.box));
    await openJob(id);
    await loadHistory();
  } catch (error) {
    $("form-error").textContent = error.message;
  } finally {
    $("start").disabled = false;
  }
}

// --- one job --------------------------------------------------------------------------

function describe(job) {
  if (job.status === "queued") return `queued${job.position ? ` (place ${job.position} in the queue)` : ""}`;
  if (job.status === "running") {
    if (!job.stage) return "running: loading networks, finding faces";
    const eta = job.eta_s === null || job.eta_s === undefined ? "" : ` · ${duration(job.eta_s)} left`;
    return `running: scale ${job.stage}/${job.stages} · step ${job.step}/${job.steps}${eta}`;
  }
  if (job.status === "failed") return "failed";
  return job.status;
}

function showJob(job) {
  state.job = job;
  $("job").hidden = false;
  $("job-id").textContent = job.id;
  $("status").textContent = describe(job);
  $("status").dataset.status = job.status;
  const total = job.stages && job.steps ? job.stages * job.steps : 0;
  $("progress").value = job.status === "done" ? 1 : total ? ((job.stage - 1) * job.steps + job.step) / total : 0;
  $("terms").textContent = job.terms
    ? Object.entries(job.terms).map(([k, v]) => `${k} ${Number(v).toPrecision(3)}`).join(" · ")
    : "";
  $("job-error").textContent = job.error && job.status !== "cancelled" ? job.error : "";
  $("cancel").hidden = FINISHED.includes(job.status);
  const done = job.status === "done";
  const seconds = state.jobEstimate;
  $("job-estimate").textContent = seconds === null || seconds === undefined ? ""
    : FINISHED.includes(job.status) ? `Estimated beforehand: ${duration(seconds)} ${THIS_COMPUTER}.`
      : `Painting will take ${duration(seconds)} ${THIS_COMPUTER}.`;
  if (job.links.preview && !done) showPreview(job.links.preview + "?t=" + Date.now());
  $("preview-caption").textContent = job.links.preview && !done ? "preview" : "";
  $("preview-figure").hidden = done;
  $("downloads").hidden = !done;
  if (done) {
    $("download-png").href = job.links.result;
    $("download-tif").href = job.links.tif;
    $("record").href = job.links.record;
    showCompare(job);
  } else {
    $("compare").hidden = true;
  }
}

// --- the result: the painting over the photograph, a slider between them ----------------

function setSplit(percent) {
  const split = Math.min(100, Math.max(0, percent));
  $("compare-view").style.setProperty("--split", `${split}%`);
  $("compare-slider").value = String(Math.round(split));
}

function showCompare(job) {
  $("compare").hidden = false;
  const after = job.links.result;
  if ($("compare-after").dataset.url !== after) {
    $("compare-after").dataset.url = after;
    $("compare-after").src = after;
    $("compare-photo").src = job.links.inputs[0];
    zoomTo(null);
    setSplit(50);
  }
  showZoom(job);
}

// The largest face the job's method used (its "faces" event), or the quick look's of the
// photo it was sent with: [x1, y1, x2, y2] in the photograph's pixels.
async function jobFace(job) {
  if (!state.faces.has(job.id)) {
    const response = await fetch(job.links.events);
    const text = response.ok ? await response.text() : "";
    const faces = text.split("\n\n").filter((frame) => frame.includes("event: faces"))
      .map((frame) => JSON.parse(frame.split("data: ")[1]).boxes);
    state.faces.set(job.id, faces.length ? faces[faces.length - 1] : []);
  }
  const boxes = state.faces.get(job.id) || [];
  const area = (b) => (b[2] - b[0]) * (b[3] - b[1]);
  return boxes.length ? boxes.reduce((a, b) => (area(b) > area(a) ? b : a)) : null;
}

async function showZoom(job) {
  const face = await jobFace(job).catch(() => null);
  if (state.job && state.job.id !== job.id) return;
  $("compare-zoom").hidden = !face;
  $("compare-zoom").onclick = () => zoomTo($("compare-view").dataset.zoom ? null : face);
}

// Enlarge both pictures alike so that ``face`` fills about half the view (null: the whole
// picture).
function zoomTo(face) {
  const view = $("compare-view");
  const photo = $("compare-photo");
  let transform = "";
  if (face && photo.naturalWidth) {
    const [w, h] = [photo.naturalWidth, photo.naturalHeight];
    const [cx, cy] = [(face[0] + face[2]) / 2 / w, (face[1] + face[3]) / 2 / h];
    const k = Math.min(6, Math.max(1, 0.5 / Math.max((face[2] - face[0]) / w, (face[3] - face[1]) / h)));
    const shift = (c) => Math.min(0, Math.max(1 - k, 0.5 - c * k)) * 100;
    transform = `translate(${shift(cx)}%, ${shift(cy)}%) scale(${k})`;
  }
  view.dataset.zoom = transform ? "face" : "";
  view.style.setProperty("--zoom", transform || "none");
  $("compare-zoom").textContent = transform ? "Whole picture" : "Zoom to the face";
}

// Drag (mouse, pen or finger) or tap across the picture to move the divide; vertical
// swipes still scroll the page (touch-action: pan-y).
function watchCompare() {
  const view = $("compare-view");
  const follow = (event) => {
    const box = view.getBoundingClientRect();
    setSplit(((event.clientX - box.left) / box.width) * 100);
  };
  view.addEventListener("pointerdown", (event) => {
    view.setPointerCapture(event.pointerId);
    follow(event);
  });
  view.addEventListener("pointermove", (event) => {
    if (view.hasPointerCapture(event.pointerId)) follow(event);
  });
  $("compare-slider").oninput = () => setSplit(Number($("compare-slider").value));
  $("compare-after").onload = () => {
    const img = $("compare-after");
    view.style.setProperty("--aspect", String(img.naturalWidth / img.naturalHeight));
  };
}

function showPreview(url) {
  const img = $("preview");
  if (img.dataset.url === url) return;
  img.dataset.url = url;
  img.src = url;
  img.hidden = false;
}

async function refreshJob() {
  if (!state.job) return;
  const job = await api(`/api/jobs/${state.job.id}`);
  showJob(job);
  if (FINISHED.includes(job.status)) {
    stopWatching();
    await loadHistory();
  }
}

function stopWatching() {
  if (state.events) state.events.close();
  if (state.poll) clearInterval(state.poll);
  state.events = state.poll = null;
}

async function openJob(id) {
  stopWatching();
  $("preview").hidden = true;
  $("preview").dataset.url = "";
  state.jobEstimate = null;
  showJob(await api(`/api/jobs/${id}`));
  if (FINISHED.includes(state.job.status)) return;
  const events = new EventSource(`/api/jobs/${id}/events`);
  state.events = events;
  const update = (fields) => showJob({ ...state.job, ...fields });
  events.addEventListener("started", () => update({ status: "running" }));
  events.addEventListener("stage", (e) => update(JSON.parse(e.data)));
  events.addEventListener("progress", (e) => update(JSON.parse(e.data)));
  events.addEventListener("preview", (e) => showPreview(JSON.parse(e.data).url));
  events.addEventListener("estimate", (e) => {
    state.jobEstimate = JSON.parse(e.data).seconds;
    showJob(state.job);
  });
  events.addEventListener("faces", (e) => state.faces.set(id, JSON.parse(e.data).boxes));
  for (const kind of FINISHED) events.addEventListener(kind, () => refreshJob());
  state.poll = setInterval(() => refreshJob().catch(() => {}), 3000);
}

async function cancelJob() {
  try {
    showJob(await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }));
  } catch (error) {
    $("job-error").textContent = error.message;
  }
  await refreshJob();
}

// --- history --------------------------------------------------------------------------

async function runAgain(job) {
  const [photo, ...paintings] = job.links.inputs;
  state.photo = await fetchBlob(photo, "photo");
  state.paintings = await Promise.all(paintings.map((url, i) => fetchBlob(url, `painting ${i + 1}`)));
  fillSettings(job.settings);
  showInputs();
  $("new").scrollIntoView();
}

function historyItem(job) {
  const item = document.createElement("li");
  item.dataset.id = job.id;
  item.dataset.status = job.status;
  const img = document.createElement("img");
  img.src = job.status === "done" ? job.links.preview : job.links.inputs[0];
  img.alt = "";
  img.loading = "lazy";
  const text = document.createElement("div");
  const s = job.settings;
  const title = document.createElement("strong");
  title.textContent = `${plainTitle(s.method)} · ${job.status}`;
  title.title = s.method;
  const details = document.createElement("span");
  const extra = Object.entries(s).filter(([k]) => !["method", "seed"].includes(k))
    .map(([k, v]) => `${k} ${v}`).join(", ");
  details.textContent = `${job.created.replace("T", " ").replace("+00:00", " UTC")} · seed ${s.seed}${extra ? " · " + extra : ""}`;
  text.append(title, document.createElement("br"), details);
  const actions = document.createElement("div");
  const open = document.createElement("button");
  open.type = "button";
  open.textContent = "Open";
  open.onclick = () => openJob(job.id);
  const again = document.createElement("button");
  again.type = "button";
  again.textContent = "Run again with changes";
  again.onclick = () => runAgain(job).catch((e) => { $("form-error").textContent = e.message; });
  actions.append(open, again);
  if (FINISHED.includes(job.status)) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Delete";
    remove.onclick = async () => {
      await fetch(`/api/jobs/${job.id}`, { method: "DELETE" });
      await loadHistory();
    };
    actions.append(remove);
  }
  item.append(img, text, actions);
  return item;
}

async function loadHistory() {
  const jobs = await api("/api/jobs");
  $("history").replaceChildren(...jobs.map(historyItem));
}

// --- start ----------------------------------------------------------------------------

async function start() {
  state.schema = await api("/api/settings");
  for (const name of Object.keys(state.schema.methods)) {
    $("method").append(new Option(plainTitle(name), name, false, name === state.schema.default_method));
  }
  $("method").value = state.schema.default_method;
  $("size").max = state.schema.limits.max_size;
  buildAdvanced();
  showMethod();
  for (const example of await api("/api/examples")) {
    const select = example.kind === "painting" ? $("example-painting") : $("example-photo");
    select.append(new Option(example.title, example.name));
  }
  $("method").onchange = () => { showMethod(); later(instantPreview); later(updateEstimates); };
  $("advanced-fields").onchange = () => { showKnobs(); later(inspectPhoto); later(updateEstimates); };
  $("advanced-fields").oninput = () => later(updateEstimates);
  for (const name of ["identity", "style_strength"]) {
    $(name).oninput = () => { $(name + "-value").textContent = $(name).value; later(updateEstimates); };
  }
  for (const name of ["size", "style_weight"]) $(name).oninput = () => later(updateEstimates);
  for (const name of ["preserve_colors", "background-color"]) $(name).onchange = () => later(updateEstimates);
  watchCompare();
  $("style_strength").onchange = () => later(instantPreview);
  $("background-mode").onchange = () => {
    $("background-color").hidden = $("background-mode").value !== "color";
    later(updateEstimates);
  };
  $("photo-file").onchange = (e) => {
    const file = e.target.files[0];
    if (file) state.photo = { blob: file, name: file.name };
    showInputs();
  };
  $("painting-file").onchange = (e) => {
    for (const file of e.target.files) state.paintings.push({ blob: file, name: file.name });
    showInputs();
  };
  $("example-photo").onchange = async (e) => {
    if (e.target.value) state.photo = await fetchBlob(`/api/examples/${e.target.value}`, e.target.value);
    showInputs();
  };
  $("example-painting").onchange = async (e) => {
    if (e.target.value) state.paintings.push(await fetchBlob(`/api/examples/${e.target.value}`, e.target.value));
    e.target.value = "";
    showInputs();
  };
  $("job-form").onsubmit = submitJob;
  $("cancel").onclick = cancelJob;
  updateEstimates();
  await loadHistory();
}

start().catch((error) => { $("form-error").textContent = error.message; });
