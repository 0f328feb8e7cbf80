// jnst serve's page: pick images and settings, start a job, follow it live (server-sent events),
// stop it, download the PNG. The job's id sits in the URL (#job=ID), so a reload reconnects.
"use strict";

const $ = (id) => document.getElementById(id);
const FINISHED = ["done", "stopped", "failed"];
let content = null;
let styles = [];
let jobId = null;
let source = null;
let picked = 0;
let shown = null;
let limits = null; // presets and limits from /api/presets; the limits are checked before an upload too

function showError(message) {
  $("error").textContent = message || "";
}

function thumb(file, caption) {
  const figure = document.createElement("figure");
  const img = document.createElement("img");
  img.src = URL.createObjectURL(file);
  img.alt = file.name;
  figure.append(img, caption || "");
  return figure;
}

function showFiles() {
  $("content-thumbs").replaceChildren(...(content ? [thumb(content)] : []));
  $("style-thumbs").replaceChildren(
    ...styles.map((file) => {
      if (styles.length < 2) return thumb(file);
      const blend = document.createElement("input");
      Object.assign(blend, { type: "number", min: 0, step: "any", value: 1, title: "blend weight", className: "blend" });
      return thumb(file, blend);
    }),
  );
}

function dropZone(zone, input, take) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take([...e.dataTransfer.files]);
    showFiles();
  });
  input.addEventListener("change", () => { take([...input.files]); showFiles(); });
}

function optionalNumber(id) {
  const text = $(id).value.trim();
  return text === "" ? undefined : Number(text);
}

function settings() {
  const s = { preset: $("preset").value, size: Number($("size").value), color: $("color").value };
  for (const [key, id] of [["steps", "steps"], ["style_weight", "style-weight"], ["content_weight", "content-weight"]]) {
    const value = optionalNumber(id);
    if (value !== undefined) s[key] = value;
  }
  if (styles.length > 1) s.style_blend = [...document.querySelectorAll(".blend")].map((b) => Number(b.value));
  const values = $("sweep-values").value.trim();
  if (values) s.sweep = { name: $("sweep-name").value, values: values.split(/[\s,]+/).map(Number) };
  const regions = $("semantic").value;
  if (regions) s.semantic = regions === "auto" ? "auto" : Number(regions);
  return s;
}

function duration(seconds) {
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

function describe(st) {
  const parts = [st.state];
  if (st.place) parts.push(`place ${st.place} in the queue`);
  if (st.state !== "queued") parts.push(`step ${st.step} / ${st.total_steps}`);
  if (st.loss !== null) parts.push(`loss ${st.loss.toPrecision(4)}`);
  if (st.speed) parts.push(`${st.speed.toFixed(2)} steps/s`);
  if (st.seconds_left !== null) parts.push(`${duration(st.seconds_left)} left`);
  if (st.note) parts.push(st.note);
  return parts.join(" · ");
}

function imageUrl(item, step) {
  return `/api/jobs/${jobId}/image?item=${item}&step=${step}`;
}

function showImages(st) {
  const key = `${st.step}/${picked}`;
  if (!st.images || key === shown) return;
  shown = key;
  $("preview").src = imageUrl(picked, st.step);
  $("download").href = $("preview").src;
  $("download").classList.remove("disabled");
  if (st.images < 2) return $("grid").replaceChildren();
  $("grid").replaceChildren(
    ...st.labels.map((label, i) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = imageUrl(i, st.step);
      figure.append(img, label);
      figure.classList.toggle("picked", i === picked);
      figure.addEventListener("click", () => { picked = i; showImages(st); });
      return figure;
    }),
  );
}

function showRegions(st) {
  const figure = $("regions-figure");
  if (st.regions && figure.hidden) $("regions").src = `/api/jobs/${jobId}/regions`;
  figure.hidden = !st.regions;
}

function update(st) {
  $("status").textContent = describe(st);
  showError(st.error);
  showImages(st);
  showRegions(st);
  const finished = FINISHED.includes(st.state);
  $("stop").disabled = finished;
  $("start").disabled = !finished;
  if (finished && source) {
    source.close();
    source = null;
  }
}

async function watch(id) {
  jobId = id;
  picked = 0;
  shown = null;
  $("regions-figure").hidden = true;
  history.replaceState(null, "", `#job=${id}`);
  const response = await fetch(`/api/jobs/${id}`);
  const body = await json(response);
  if (!response.ok) {
    history.replaceState(null, "", "#");
    return showError(`job ${id}: ${body.error}`);
  }
  update(body);
  if (FINISHED.includes(body.state)) return;
  source = new EventSource(`/api/jobs/${id}/events`);
  source.onmessage = (e) => update(JSON.parse(e.data));
}

// A response's JSON; an error that is not JSON (a proxy's page) becomes {error: its status}.
async function json(response) {
  return response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
}

async function start(e) {
  e.preventDefault();
  showError("");
  if (!content || !styles.length) return showError("choose a content photo and at least one style image");
  if (styles.length > limits.max_styles) return showError(`choose at most ${limits.max_styles} style images`);
  const bytes = [content, ...styles].reduce((sum, file) => sum + file.size, 0);
  if (bytes > limits.max_upload) {
    return showError(`the images have ${bytes} bytes, over this server's limit of ${limits.max_upload}`);
  }
  const form = new FormData();
  form.append("content", content);
  styles.forEach((file) => form.append("style", file));
  form.append("settings", JSON.stringify(settings()));
  $("start").disabled = true;
  const response = await fetch("/api/jobs", { method: "POST", body: form });
  const body = await json(response);
  if (!response.ok) {
    $("start").disabled = false;
    return showError(body.error);
  }
  $("download").classList.add("disabled");
  await watch(body.id);
}

async function stop() {
  const response = await fetch(`/api/jobs/${jobId}`, { method: "DELETE" });
  update(await json(response));
}

async function init() {
  dropZone($("content-drop"), $("content-file"), (files) => { content = files[0] || content; });
  dropZone($("style-drop"), $("style-file"), (files) => { if (files.length) styles = files; });
  $("controls").addEventListener("submit", start);
  $("stop").addEventListener("click", stop);
  limits = await (await fetch("/api/presets")).json();
  for (const [name, text] of Object.entries(limits.presets)) {
    $("preset").append(Object.assign(document.createElement("option"), { value: name, textContent: name, title: text }));
  }
  Object.assign($("size"), { min: limits.size.min, max: limits.size.max });
  const id = new URLSearchParams(location.hash.slice(1)).get("job");
  if (id) await watch(id);
}

init();
