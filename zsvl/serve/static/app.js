// zsvl serve web page: plain JavaScript, no external assets.
"use strict";
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("zsvl-token") || "";
let currentFile = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    $("token-btn").hidden = false;
    askToken();
  }
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    throw new Error(message);
  }
  return body;
}

function askToken() {
  const given = prompt("This server needs a bearer token:", token);
  if (given !== null) {
    token = given.trim();
    localStorage.setItem("zsvl-token", token);
    loadInfo();
  }
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

function fillSelect(select, values, keepFirst) {
  const first = keepFirst ? select.options[0] : null;
  select.innerHTML = "";
  if (first) select.appendChild(first);
  for (const value of values) {
    const option = el("option", "", value);
    option.value = value;
    select.appendChild(option);
  }
}

async function loadInfo() {
  try {
    const health = await api("/health");
    $("status").className = "dot ok";
    $("model").textContent = health.model || "";
    $("model").title = health.fingerprint || "";
    if (health.auth) $("token-btn").hidden = false;
  } catch (err) {
    $("status").className = "dot down";
    showError("Server unreachable: " + err.message);
    return;
  }
  try {
    const info = await api("/indexes");
    fillSelect($("index-select"), info.indexes.map((i) => i.name), false);
    fillSelect($("descriptors"), info.descriptor_sets || [], true);
    fillSelect($("classifier"), info.classifiers.map((c) => c.name), true);
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

function barRow(name, value, top, note) {
  const row = el("div", "bar-row" + (top ? " top" : ""));
  const label = el("span", "name", name);
  label.title = note || name;
  const track = el("div", "track");
  const fill = el("div", "fill");
  fill.style.width = Math.max(1, Math.round(value * 100)) + "%";
  track.appendChild(fill);
  row.append(label, track, el("span", "num", (value * 100).toFixed(1) + "%"));
  return row;
}

function showHits(title, hits, imageUrl, seconds) {
  $("hits-title").textContent = title;
  $("timing").textContent = seconds ? Math.round(seconds * 1000) + " ms" : "";
  const grid = $("hits");
  grid.innerHTML = "";
  if (imageUrl) {
    const card = el("div", "hit query-card");
    const img = el("img");
    img.src = imageUrl;
    img.alt = "query image";
    card.append(img, el("span", "muted", "query image"));
    grid.appendChild(card);
  }
  const best = hits.length ? Math.max(...hits.map((h) => h.score)) : 1;
  for (const hit of hits) {
    const card = el("div", "hit");
    card.appendChild(el("div", "caption", hit.caption));
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = Math.max(2, Math.round((100 * hit.score) / Math.max(best, 1e-6))) + "%";
    track.appendChild(fill);
    const foot = el("div", "foot");
    foot.append(el("span", "score", hit.score.toFixed(3)), el("span", "", "#" + hit.id));
    card.append(track, foot);
    grid.appendChild(card);
  }
  $("hits-view").hidden = false;
  $("empty").hidden = true;
}

async function searchText(event) {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  showError("");
  const started = performance.now();
  try {
    const body = await api("/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query, index: $("index-select").value || null, k: 12 }),
    });
    $("classify-view").hidden = true;
    $("name-view").hidden = true;
    showHits("Captions for “" + query + "”", body.results[0].hits, null,
             (performance.now() - started) / 1000);
  } catch (err) {
    showError(err.message);
  }
}

function imageForm(fields) {
  const form = new FormData();
  form.append(fields.fileField, currentFile, currentFile.name || "image.png");
  for (const [key, value] of Object.entries(fields)) {
    if (key !== "fileField" && value) form.append(key, value);
  }
  return form;
}

async function runImage() {
  if (!currentFile) return;
  showError("");
  const url = URL.createObjectURL(currentFile);
  const index = $("index-select").value;
  const classes = $("classes").value.trim();
  const descriptors = $("descriptors").value;
  const classifier = $("classifier").value;
  const jobs = [];
  if (index) {
    const started = performance.now();
    jobs.push(api("/search", { method: "POST", body: imageForm({ fileField: "image", index, k: "12" }) })
      .then((b) => showHits("Captions nearest the image", b.results[0].hits, url,
                            (performance.now() - started) / 1000)));
  }
  if (classes || descriptors || classifier) {
    jobs.push(api("/classify", { method: "POST", body: imageForm({
      fileField: "images", classes, descriptors, classifier, top_k: "10", explain: "5" }) })
      .then(showClassification));
  } else {
    $("classify-view").hidden = true;
  }
  if (index) {
    jobs.push(api("/name", { method: "POST", body: imageForm({ fileField: "images", index, top_k: "8" }) })
      .then(showName));
  }
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(failed.reason.message);
}

function showClassification(body) {
  const result = body.results[0];
  $("label").innerHTML = "";
  $("label").append(result.label, el("small", "", (result.probability * 100).toFixed(1) + "%"));
  const bars = $("class-bars");
  bars.innerHTML = "";
  result.top_k.forEach((t, i) => bars.appendChild(
    barRow(t.label, t.probability, i === 0, "cosine " + t.score.toFixed(3))));
  const box = $("explanation");
  box.innerHTML = "";
  box.hidden = !result.explanation;
  if (result.explanation) {
    box.appendChild(el("h3", "", "Why “" + result.explanation.label + "”: the descriptions behind it"));
    const list = el("ol");
    for (const ev of result.explanation.evidence) {
      const item = el("li");
      item.append(el("span", "", ev.descriptor + " "),
                  el("span", "why", "similarity " + ev.similarity.toFixed(3) +
                     ", contribution " + ev.contribution.toFixed(3)));
      list.appendChild(item);
    }
    box.appendChild(list);
  }
  $("classify-view").hidden = false;
  $("empty").hidden = true;
}

function showName(body) {
  const result = body.results[0];
  $("name-label").innerHTML = "";
  $("name-label").append(result.label || "(no candidate)",
                         el("small", "", (result.probability * 100).toFixed(1) + "%"));
  const bars = $("name-bars");
  bars.innerHTML = "";
  result.candidates.forEach((c, i) => bars.appendChild(barRow(c.label, c.probability, i === 0)));
  $("name-view").hidden = false;
  $("empty").hidden = true;
}

function takeFile(file) {
  if (!file) return;
  currentFile = file;
  const preview = $("preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-text").hidden = true;
  runImage();
}

function setup() {
  $("search-form").addEventListener("submit", searchText);
  $("file-input").addEventListener("change", (e) => takeFile(e.target.files[0]));
  $("token-btn").addEventListener("click", askToken);
  const drop = $("drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => takeFile(e.dataTransfer.files[0]));
  for (const id of ["classes", "descriptors", "classifier"]) {
    $(id).addEventListener("change", runImage);
  }
  loadInfo();
}

document.addEventListener("DOMContentLoaded", setup);
