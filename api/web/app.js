// The NER service page: a small hash-routed app over the HTTP API (CONTRACT.md §4).
// No build step: plain ES modules; uPlot (vendored, global `uPlot`) draws the curves; the
// error analysis is drawn by the same module `ner evaluate --errors` inlines.
import { el, labelColor, renderAnalysis, renderLegend, renderPerType, renderSpans } from "./analysis.js";

const main = document.getElementById("main");
const messageBox = document.getElementById("message");
const KEY_STORE = "ner-api-key";

// ------------------------------------------------------------------ API access

class ApiError extends Error {
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

/** Lines of a `{"detail": ...}` answer: "line N: message" for file problems, "field: message"
 * for FastAPI's validation errors. */
function problemLines(detail) {
  if (!Array.isArray(detail)) return [];
  return detail.map((p) => {
    if (p && typeof p === "object") {
      if ("line" in p) return `line ${p.line}: ${p.message}`;
      if ("msg" in p) return `${(p.loc || []).filter((x) => x !== "body").join(".") || "request"}: ${p.msg}`;
    }
    return typeof p === "string" ? p : JSON.stringify(p);
  });
}

function describe(status, data, text) {
  const detail = data && typeof data === "object" ? data.detail : undefined;
  if (status === 401) {
    return "The API needs a key: type it in the “API key” field at the top and press Use." +
      (typeof detail === "string" ? ` (${detail})` : "");
  }
  if (typeof detail === "string") return `${detail} (HTTP ${status})`;
  if (Array.isArray(detail)) {
    return status === 422 ? `The request was refused: ${detail.length} problem${detail.length === 1 ? "" : "s"}.` : `HTTP ${status}`;
  }
  if (status >= 500) return `The server failed (HTTP ${status}). ${text ? text.slice(0, 200) : ""}`;
  return `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ""}`;
}

async function api(path, { method = "GET", json, form } = {}) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `Could not reach the API (${err.message}). Is the server running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, describe(response.status, data, text), problemLines(data?.detail));
  }
  return data;
}

// ------------------------------------------------------------------ messages

function errorBox(err) {
  const problems = err.problems || [];
  return el(
    "div",
    { class: "error-box", role: "alert" },
    el("strong", {}, err.message || String(err)),
    problems.length ? el("ol", {}, problems.map((p) => el("li", {}, p))) : null,
  );
}

/** A message in the banner under the header (errors stay until closed or the next page). */
function flash(text, { ok = false, err = null } = {}) {
  messageBox.className = "message" + (ok ? " ok" : "");
  messageBox.setAttribute("role", ok ? "status" : "alert");
  messageBox.replaceChildren(
    el("button", { class: "close", type: "button", "aria-label": "close the message", onclick: () => (messageBox.hidden = true) }, "×"),
    err ? errorBox(err) : el("span", {}, text),
  );
  messageBox.hidden = false;
}

function clearFlash() {
  messageBox.hidden = true;
  messageBox.replaceChildren();
}

// Nothing may leave a blank page: any error nobody caught lands in the banner.
window.addEventListener("unhandledrejection", (e) => flash("", { err: e.reason instanceof Error ? e.reason : new Error(String(e.reason)) }));
window.addEventListener("error", (e) => {
  // Chromium reports a resize that took two frames as an error; it is harmless.
  if (/ResizeObserver loop/.test(e.message)) return;
  flash("", { err: new Error(`Page error: ${e.message}`) });
});

// ------------------------------------------------------------------ small helpers

const pct = (x) => (typeof x === "number" ? `${(100 * x).toFixed(1)}` : "–");
const shortId = (id) => String(id).slice(0, 8);

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function secondsBetween(a, b) {
  return a && b ? (new Date(b) - new Date(a)) / 1000 : null;
}

const statusBadge = (status) => el("span", { class: `badge status-${status}` }, status);
const stageBadge = (stage) => el("span", { class: `badge stage-${stage}` }, stage);
const ACTIVE = new Set(["queued", "running", "cancelling"]);

function progressBar(job, label) {
  const value = Math.round((job.progress || 0) * 100);
  return el(
    "div",
    { class: "progress" },
    el("progress", { max: "100", value: String(value), "aria-label": label || `progress of job ${shortId(job.id)}` }),
    el("span", { class: "num" }, `${value}%`),
  );
}

function table(headers, rows, cls = "data") {
  return el(
    "div",
    { class: "table-scroll", tabindex: "0" },
    el(
      "table",
      { class: cls },
      el("thead", {}, el("tr", {}, headers.map((h) => (h instanceof Node ? h : el("th", { scope: "col" }, h))))),
      el("tbody", {}, rows),
    ),
  );
}

function field(labelText, input, hint) {
  return el("label", {}, el("span", {}, labelText), input, hint ? el("span", { class: "hint" }, hint) : null);
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ------------------------------------------------------------------ routing

let timers = [];

/** Call `fn` now and every `ms` while this page is shown (never two calls at once). */
function every(ms, fn) {
  let stopped = false;
  let handle = null;
  const tick = async () => {
    if (stopped) return;
    try {
      const more = await fn();
      if (more === false) return;
    } catch (err) {
      flash("", { err });
    }
    if (!stopped) handle = setTimeout(tick, ms);
  };
  timers.push(() => {
    stopped = true;
    clearTimeout(handle);
  });
  tick();
}

const ROUTES = [
  [/^#\/?$/, viewTry, "Try it"],
  [/^#\/data$/, viewData, "Data & training"],
  [/^#\/jobs$/, viewJobs, "Jobs"],
  [/^#\/jobs\/([\w-]+)$/, viewJob, "Job"],
  [/^#\/models$/, viewModels, "Models"],
  [/^#\/models\/([^/]+)$/, viewModel, "Model"],
  [/^#\/bulk$/, viewBulk, "Bulk"],
];

async function route() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/") && hash !== "#") return; // in-page anchors (the skip link)
  for (const stop of timers) stop();
  timers = [];
  clearFlash();
  const [re, view, title] = ROUTES.find(([r]) => r.test(hash)) || [null, viewNotFound, "Not found"];
  const params = re ? hash.match(re).slice(1).map(decodeURIComponent) : [];
  const section = "#/" + (hash.slice(2).split("/")[0] || "");
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${title} · NER service`;
  main.replaceChildren();
  try {
    await view(main, ...params);
  } catch (err) {
    main.append(errorBox(err));
  }
}

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});

const keyInput = document.getElementById("api-key");
keyInput.value = sessionStorage.getItem(KEY_STORE) || "";
document.getElementById("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
  route().then(() => flash(key ? "API key set for this browser tab." : "API key cleared.", { ok: true }));
});

function viewNotFound(root) {
  root.append(el("h1", {}, "Page not found"), el("p", {}, el("a", { href: "#/" }, "Back to Try it")));
}

// ------------------------------------------------------------------ 1. Try it

const SAMPLES = [
  ["News", "Angela Merkel met Emmanuel Macron in Paris on Tuesday to talk about the European Union budget."],
  ["Business", "Tim Cook said Apple will open a new office in Munich, Reuters reported from London on Friday."],
  ["Science", "Dr. Priya Raman left Google in 2021 and joined the World Health Organization in Geneva, Switzerland."],
];

function viewTry(root) {
  const text = el("textarea", { id: "text", name: "text", rows: "7", spellcheck: "false" });
  text.value = SAMPLES[0][1];
  const out = el("section", { id: "entities", "aria-live": "polite", "aria-label": "entities found" });
  const go = el("button", { type: "submit", id: "find" }, "Find entities");
  const form = el(
    "form",
    { class: "panel" },
    el("label", { for: "text" }, el("strong", {}, "Text")),
    text,
    el(
      "div",
      { class: "row" },
      go,
      el("span", { class: "muted" }, "Samples:"),
      SAMPLES.map(([name, sample]) =>
        el("button", { type: "button", class: "secondary sample", onclick: () => { text.value = sample; text.focus(); } }, name),
      ),
      el("span", { class: "hint" }, "Ctrl+Enter runs it"),
    ),
  );
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    go.disabled = true;
    out.replaceChildren(el("p", { class: "muted" }, "Tagging…"));
    try {
      const value = text.value;
      const r = await api("/predict", { method: "POST", json: { text: value } });
      const labels = [...new Set(r.entities.map((x) => x.label))];
      out.replaceChildren(
        el(
          "p",
          {},
          "Model ",
          el("a", { href: `#/models/${encodeURIComponent(r.model_version)}`, class: "model-version" }, r.model_version),
          ` · ${r.entities.length} entit${r.entities.length === 1 ? "y" : "ies"}`,
        ),
        labels.length ? renderLegend(labels) : el("p", { class: "muted" }, "No entities found."),
        el("div", { class: "doc", tabindex: "0", "aria-label": "the text with its entities" }, renderSpans(value, r.entities, { focusable: true })),
        r.entities.length
          ? table(
              ["entity", "label", el("th", { scope: "col", class: "num" }, "score"), el("th", { scope: "col", class: "num" }, "start"), el("th", { scope: "col", class: "num" }, "end")],
              r.entities.map((x) =>
                el(
                  "tr",
                  {},
                  el("td", {}, x.text),
                  el("td", {}, el("span", { class: "swatch", style: { background: labelColor(x.label) } }), x.label),
                  el("td", { class: "num" }, x.score.toFixed(3)),
                  el("td", { class: "num" }, String(x.start)),
                  el("td", { class: "num" }, String(x.end)),
                ),
              ),
            )
          : null,
      );
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      go.disabled = false;
    }
  });
  root.append(el("h1", {}, "Try it"), el("p", { class: "muted" }, "Entities the production model finds, as POST /predict returns them. Hover or focus an entity for its score."), form, out);
}

// ------------------------------------------------------------------ 2. Data and training

function datasetReport(d) {
  const labels = Object.entries(d.labels || {});
  return el(
    "div",
    { class: "panel", id: "dataset-report" },
    el("h3", {}, `Dataset “${d.name}”`),
    el("p", {}, `${d.format} · ${d.sentences} sentences · ${d.tokens} tokens · id ${d.id}`),
    labels.length
      ? table(
          ["label", el("th", { scope: "col", class: "num" }, "entities")],
          labels.map(([l, n]) => el("tr", {}, el("td", {}, el("span", { class: "swatch", style: { background: labelColor(l) } }), l), el("td", { class: "num" }, String(n)))),
        )
      : el("p", {}, "No entities in this file."),
    d.warnings?.length
      ? el("div", {}, el("h3", {}, `${d.warnings.length} warning${d.warnings.length === 1 ? "" : "s"}`), el("ul", { class: "warnings" }, d.warnings.map((w) => el("li", {}, w))))
      : el("p", { class: "muted" }, "No warnings."),
  );
}

async function viewData(root) {
  const file = el("input", { type: "file", id: "upload-file", name: "file", required: true, accept: ".csv,.zip,.txt,.conll,.iob,.bio,.jsonl,.json" });
  const name = el("input", { type: "text", id: "upload-name", name: "name", placeholder: "the file's name" });
  const uploadButton = el("button", { type: "submit" }, "Upload and check");
  const report = el("div", { "aria-live": "polite" });
  const upload = el(
    "form",
    { class: "panel", id: "upload-form" },
    el("div", { class: "grid-form" }, field("Labelled file (CSV, ZIP, CoNLL, JSONL)", file), field("Name (optional)", name), el("div", {}, uploadButton)),
    el("p", { class: "hint" }, "CSV: text,labels columns with one BIO tag per token · CoNLL: token and tag per line · JSONL: {\"text\", \"entities\": [[start, end, label]]}."),
  );

  const trainSel = el("select", { id: "train-dataset", name: "dataset_id", required: true });
  const valSel = el("select", { id: "validation-dataset", name: "validation_dataset_id" });
  const testSel = el("select", { id: "test-dataset", name: "test_dataset_id" });
  const num = (id, placeholder, attrs = {}) => el("input", { type: "number", id, name: id.replace(/-/g, "_"), placeholder, ...attrs });
  const epochs = num("epochs", "5", { min: "1", max: "1000" });
  const lr = num("learning-rate", "0.0001", { min: "0", step: "any" });
  const batch = num("batch-size", "32", { min: "1", max: "1024" });
  const maxSentences = num("max-sentences", "all", { min: "1" });
  const seed = num("seed", "42");
  const patience = num("patience", "2", { min: "1" });
  const finalFit = el("input", { type: "checkbox", id: "final-fit", name: "final_fit", checked: true });
  const base = el("input", { type: "text", id: "base-model", name: "base_model", placeholder: "server default" });
  const preset = el(
    "select",
    { id: "preset", name: "preset" },
    el("option", { value: "default" }, "default: all-MiniLM-L6-v2, fast"),
    el("option", { value: "accurate" }, "accurate: all-mpnet-base-v2, about 5× slower"),
  );
  // What the preset changes (shared/ner/config.py): shown as the placeholders.
  preset.addEventListener("change", () => {
    const accurate = preset.value === "accurate";
    lr.placeholder = accurate ? "0.00005" : "0.0001";
    base.placeholder = accurate ? "all-mpnet-base-v2" : "server default";
  });
  const trainButton = el("button", { type: "submit", id: "start-training" }, "Start training");
  const trainMsg = el("div", { "aria-live": "polite" });
  const trainForm = el(
    "form",
    { class: "panel", id: "train-form" },
    el(
      "div",
      { class: "grid-form" },
      field("Training data", trainSel),
      field("Preset", preset, "given fields below win"),
      field("Validation data", valSel, "none: 10% of the training data"),
      field("Test data", testSel, "none: 10% of the training data"),
      field("Epochs", epochs),
      field("Learning rate", lr),
      field("Batch size", batch),
      field("Max. training sentences", maxSentences),
      field("Seed", seed),
      field("Early-stopping patience (epochs)", patience),
      field("Final fit", finalFit, "without validation data: train again on training + the 10% for the epochs chosen (about twice the time)"),
      field("Base model", base, "Hugging Face name or directory on the worker"),
    ),
    el("div", { class: "row" }, trainButton),
    trainMsg,
  );

  const listBox = el("div");
  root.append(
    el("h1", {}, "Data & training"),
    el("h2", {}, "1. Upload a dataset"),
    upload,
    report,
    el("h2", {}, "2. Train a model"),
    trainForm,
    el("h2", {}, "Datasets"),
    listBox,
  );

  async function loadDatasets(selected) {
    const { items } = await api("/datasets?limit=500");
    const options = (withNone) => [
      ...(withNone ? [el("option", { value: "" }, "none")] : []),
      ...items.map((d) => el("option", { value: d.id }, `${d.name} · ${d.sentences} sentences · ${shortId(d.id)}`)),
    ];
    const keep = (sel, value) => { if (value !== undefined) sel.value = value; };
    const [t, v, s] = [trainSel.value, valSel.value, testSel.value];
    trainSel.replaceChildren(...options(false));
    valSel.replaceChildren(...options(true));
    testSel.replaceChildren(...options(true));
    keep(trainSel, selected || t || items[0]?.id);
    keep(valSel, v);
    keep(testSel, s);
    trainButton.disabled = !items.length;
    listBox.replaceChildren(
      items.length
        ? table(
            ["name", "format", el("th", { scope: "col", class: "num" }, "sentences"), "labels", "uploaded"],
            items.map((d) =>
              el(
                "tr",
                {},
                el("td", {}, d.name),
                el("td", {}, d.format),
                el("td", { class: "num" }, String(d.sentences)),
                el("td", {}, Object.entries(d.labels).map(([l, n]) => `${l} ${n}`).join(", ")),
                el("td", {}, when(d.created_at)),
              ),
            ),
          )
        : el("p", { class: "muted" }, "No dataset yet: upload one above."),
    );
  }

  upload.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    const form = new FormData();
    form.append("file", file.files[0]);
    if (name.value.trim()) form.append("name", name.value.trim());
    uploadButton.disabled = true;
    report.replaceChildren(el("p", { class: "muted" }, "Checking the file…"));
    try {
      const d = await api("/datasets", { method: "POST", form });
      report.replaceChildren(datasetReport(d));
      await loadDatasets(d.id);
    } catch (err) {
      report.replaceChildren(errorBox(err));
    } finally {
      uploadButton.disabled = false;
    }
  });

  trainForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { dataset_id: trainSel.value, preset: preset.value };
    if (valSel.value) body.validation_dataset_id = valSel.value;
    if (testSel.value) body.test_dataset_id = testSel.value;
    for (const [key, input, parse] of [
      ["epochs", epochs, parseInt], ["learning_rate", lr, parseFloat], ["batch_size", batch, parseInt],
      ["max_sentences", maxSentences, parseInt], ["seed", seed, parseInt], ["patience", patience, parseInt],
    ]) {
      if (input.value !== "") body[key] = parse(input.value);
    }
    if (base.value.trim()) body.base_model = base.value.trim();
    if (!finalFit.checked) body.final_fit = false;
    trainButton.disabled = true;
    try {
      const job = await api("/jobs/train", { method: "POST", json: body });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      trainMsg.replaceChildren(errorBox(err));
      trainButton.disabled = false;
    }
  });

  await loadDatasets();
}

// ------------------------------------------------------------------ 3. Jobs

function jobRow(job) {
  const eta = ACTIVE.has(job.status) ? duration(job.eta_seconds) : duration(secondsBetween(job.started_at, job.finished_at));
  return el(
    "tr",
    { "data-job": job.id, "data-status": job.status },
    el("td", {}, el("a", { href: `#/jobs/${job.id}` }, shortId(job.id))),
    el("td", {}, job.type),
    el("td", {}, statusBadge(job.status)),
    el("td", {}, progressBar(job)),
    el("td", { class: "hide-narrow" }, job.stage),
    el("td", { class: "hide-narrow" }, eta),
    el("td", { class: "hide-narrow" }, job.model_version ? el("a", { href: `#/models/${encodeURIComponent(job.model_version)}` }, job.model_version) : "–"),
    el("td", { class: "hide-narrow" }, when(job.created_at)),
  );
}

function viewJobs(root) {
  const typeSel = el("select", { id: "job-type" }, el("option", { value: "" }, "all"), el("option", { value: "train" }, "train"), el("option", { value: "predict" }, "predict"));
  const statusSel = el("select", { id: "job-status" }, el("option", { value: "" }, "all"), ...["queued", "running", "succeeded", "failed", "cancelling", "cancelled"].map((s) => el("option", { value: s }, s)));
  const box = el("div", { id: "jobs" });
  root.append(
    el("h1", {}, "Jobs"),
    el("div", { class: "row filters" }, el("label", { for: "job-type" }, "Type"), typeSel, el("label", { for: "job-status" }, "Status"), statusSel),
    box,
  );
  const load = async () => {
    const q = new URLSearchParams({ limit: "100" });
    if (typeSel.value) q.set("type", typeSel.value);
    if (statusSel.value) q.set("status", statusSel.value);
    const { items, total } = await api(`/jobs?${q}`);
    box.replaceChildren(
      items.length
        ? table(
            ["job", "type", "status", "progress", el("th", { scope: "col", class: "hide-narrow" }, "stage"), el("th", { scope: "col", class: "hide-narrow" }, "ETA / took"), el("th", { scope: "col", class: "hide-narrow" }, "model"), el("th", { scope: "col", class: "hide-narrow" }, "created")],
            items.map(jobRow),
            "data jobs",
          )
        : el("p", { class: "muted" }, "No jobs yet. Start a training under Data & training."),
      total > items.length ? el("p", { class: "muted" }, `${items.length} of ${total} shown.`) : "",
    );
  };
  for (const s of [typeSel, statusSel]) s.addEventListener("change", load);
  every(1500, load);
}

/** A line chart with uPlot, updated in place as points arrive. */
function lineChart(container, title, xLabel, series) {
  let plot = null;
  const box = el("div", { class: "chart-body" });
  const summary = el("p", { class: "hint chart-summary" }, "No points yet.");
  container.append(el("h3", {}, title), box, summary);
  const width = () => Math.max(260, box.clientWidth || container.clientWidth - 16 || 300);
  // Resized on the next frame and only when the width changed: resizing the plot inside
  // the observer's callback would re-trigger it (the "ResizeObserver loop" warning).
  let lastWidth = 0;
  const resize = new ResizeObserver(() =>
    requestAnimationFrame(() => {
      const w = width();
      if (plot && w !== lastWidth) {
        lastWidth = w;
        plot.setSize({ width: w, height: 200 });
      }
    }),
  );
  resize.observe(container);
  timers.push(() => resize.disconnect());
  // A series may have no value at some x (null): the last value it has.
  const last = (y) => y.findLast((v) => v !== null && v !== undefined);
  return (xs, ...ys) => {
    const lasts = series.map((s, i) => [s.label, last(ys[i])]).filter(([, v]) => v !== undefined);
    summary.textContent = xs.length
      ? `${xs.length} points; last: ${lasts.map(([label, v]) => `${label} ${Number(v).toFixed(4)}`).join(", ")} at ${xLabel} ${xs[xs.length - 1]}`
      : "No points yet.";
    if (!xs.length || !window.uPlot) return;
    const data = [xs, ...ys];
    if (!plot) {
      plot = new window.uPlot(
        {
          width: width(),
          height: 200,
          scales: { x: { time: false } },
          axes: [{ label: xLabel }, {}],
          series: [{ label: xLabel }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: xs.length < 40 } }))],
          legend: { show: true },
        },
        data,
        box,
      );
    } else {
      plot.setData(data);
    }
  };
}

function downloadResults(job) {
  const make = (fmt) => async () => {
    const items = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await api(`/jobs/${job.id}/results?offset=${offset}&limit=1000`);
      items.push(...page.items);
      if (items.length >= page.total || !page.items.length) break;
    }
    if (fmt === "jsonl") {
      download(`ner-${shortId(job.id)}.jsonl`, items.map((r) => JSON.stringify({ id: r.document_id, entities: r.entities })).join("\n") + "\n", "application/x-ndjson");
    } else {
      const q = (v) => `"${String(v).replace(/"/g, '""')}"`;
      const lines = ["document_id,start,end,label,text,score"];
      for (const r of items) for (const x of r.entities) lines.push([q(r.document_id), x.start, x.end, q(x.label), q(x.text), x.score].join(","));
      download(`ner-${shortId(job.id)}.csv`, lines.join("\r\n") + "\r\n", "text/csv");
    }
  };
  const guard = (fn) => async () => {
    try {
      await fn();
    } catch (err) {
      flash("", { err });
    }
  };
  return el(
    "div",
    { class: "row downloads" },
    el("button", { type: "button", id: "download-jsonl", onclick: guard(make("jsonl")) }, "Download JSONL"),
    el("button", { type: "button", id: "download-csv", onclick: guard(make("csv")) }, "Download CSV"),
  );
}

async function viewJob(root, id) {
  const head = el("div");
  const curves = el("div", { class: "charts" });
  const lossBox = el("div", { class: "chart", id: "loss-chart", role: "img", "aria-label": "training loss by step" });
  const f1Box = el("div", { class: "chart", id: "f1-chart", role: "img", "aria-label": "validation F1 by epoch" });
  curves.append(lossBox, f1Box);
  const scores = el("div", { id: "job-scores" });
  const extra = el("div");
  root.append(el("h1", {}, `Job ${shortId(id)}`), head, extra);
  let drawLoss = null;
  let drawF1 = null;
  let shownFinal = false;

  const cancel = async () => {
    if (!window.confirm(`Cancel job ${shortId(id)}? A training stops within seconds and keeps no model.`)) return;
    try {
      await api(`/jobs/${id}/cancel`, { method: "POST" });
      flash("Cancel requested: the job stops within seconds.", { ok: true });
    } catch (err) {
      flash("", { err });
    }
  };

  every(1000, async () => {
    const job = await api(`/jobs/${id}`);
    const active = ACTIVE.has(job.status);
    head.replaceChildren(
      el(
        "div",
        { class: "panel" },
        el("p", { class: "row" }, statusBadge(job.status), el("span", { id: "job-stage" }, `stage: ${job.stage}`), job.type === "train" ? "training job" : `bulk prediction of ${job.documents ?? "?"} documents`),
        progressBar(job, "job progress"),
        el(
          "p",
          { class: "muted" },
          active ? `ETA ${duration(job.eta_seconds)}` : `took ${duration(secondsBetween(job.started_at, job.finished_at))}`,
          ` · created ${when(job.created_at)}`,
          job.model_version ? [" · model ", el("a", { href: `#/models/${encodeURIComponent(job.model_version)}` }, job.model_version)] : "",
        ),
        job.error ? errorBox(new Error(job.error)) : null,
        active && job.status !== "cancelling" ? el("button", { type: "button", class: "danger", id: "cancel-job", onclick: cancel }, "Cancel job") : null,
      ),
    );
    if (job.type === "train") {
      if (!drawLoss) {
        extra.replaceChildren(el("h2", {}, "Training curves"), curves, el("h2", {}, "Scores per type"), scores);
        drawLoss = lineChart(lossBox, "Loss by step", "step", [
          { label: "loss", color: "#1c4f9c" },
          { label: "final fit", color: "#7048e8" }, // training again on training + validation
        ]);
        drawF1 = lineChart(f1Box, "Validation by epoch", "epoch", [
          { label: "F1", color: "#2b8a3e" },
          { label: "precision", color: "#c2255c" },
          { label: "recall", color: "#e8590c" },
        ]);
      }
      const h = job.history || {};
      const loss = h.loss || [];
      const fit = h.final_fit || [];
      const val = h.validation || [];
      // Both runs count steps from 1: one step axis, each curve null where it has no point.
      const steps = [...new Set([...loss, ...fit].map((p) => p.step))].sort((a, b) => a - b);
      const at = (points) => {
        const byStep = new Map(points.map((p) => [p.step, p.loss]));
        return steps.map((x) => byStep.get(x) ?? null);
      };
      drawLoss(steps, at(loss), at(fit));
      drawF1(val.map((p) => p.epoch), val.map((p) => p.f1), val.map((p) => p.precision), val.map((p) => p.recall));
      if (!job.history && active) lossBox.querySelector(".chart-summary").textContent = "The curves appear once the worker reports training steps.";
      const m = job.metrics || {};
      const perType = job.status === "succeeded" ? m.per_type : m.validation?.per_type;
      if (perType && !shownFinal) {
        scores.replaceChildren(
          el("p", { class: "muted" }, job.status === "succeeded" ? `On the test data: F1 ${pct(m.f1)} · precision ${pct(m.precision)} · recall ${pct(m.recall)}` : `Last validation (epoch ${m.epoch ?? "?"}): F1 ${pct(m.validation?.f1)}`),
          renderPerType(perType),
        );
        shownFinal = job.status === "succeeded";
      } else if (!perType) {
        scores.replaceChildren(el("p", { class: "muted" }, "Scores appear after the first epoch."));
      }
    } else if (!extra.childElementCount || (job.status === "succeeded" && !extra.querySelector(".downloads"))) {
      extra.replaceChildren(
        el("h2", {}, "Results"),
        job.status === "succeeded" ? downloadResults(job) : el("p", { class: "muted" }, "Results can be downloaded when the job has succeeded."),
      );
    }
    return active; // stop polling once the job has ended
  });
}

// ------------------------------------------------------------------ 4. Models

async function viewModels(root) {
  root.append(el("h1", {}, "Models"));
  const box = el("div", { id: "models" });
  root.append(box);
  const [models, trainJobs, datasets] = await Promise.all([
    api("/models?limit=500"),
    api("/jobs?type=train&limit=500").catch(() => ({ items: [] })),
    api("/datasets?limit=500").catch(() => ({ items: [] })),
  ]);
  const jobs = Object.fromEntries(trainJobs.items.map((j) => [j.id, j]));
  const names = Object.fromEntries(datasets.items.map((d) => [d.id, d]));
  const types = [...new Set(models.items.flatMap((m) => Object.keys(m.metrics?.per_type || {})))].sort();

  const promote = (m) => () => promoteModel(m.version);

  if (!models.items.length) {
    box.append(el("p", { class: "muted" }, "No model yet: train one under ", el("a", { href: "#/data" }, "Data & training"), "."));
    return;
  }
  const num = (h, cls = "") => el("th", { scope: "col", class: `num ${cls}` }, h);
  box.append(
    table(
      [
        "version", "stage", num("F1"), num("precision", "hide-narrow"), num("recall", "hide-narrow"),
        ...types.map((t) => num(`F1 ${t}`, "hide-narrow")),
        el("th", { scope: "col", class: "hide-narrow" }, "training time"),
        el("th", { scope: "col", class: "hide-narrow" }, "base model"),
        el("th", { scope: "col", class: "hide-narrow" }, "data"),
        "",
      ],
      models.items.map((m) => {
        const job = jobs[m.job_id];
        const data = job?.dataset_id ? names[job.dataset_id] : null;
        const metrics = m.metrics || {};
        return el(
          "tr",
          { class: m.stage, "data-version": m.version },
          el("td", {}, el("a", { href: `#/models/${encodeURIComponent(m.version)}` }, m.version)),
          el("td", {}, stageBadge(m.stage)),
          el("td", { class: "num" }, pct(metrics.f1)),
          el("td", { class: "num hide-narrow" }, pct(metrics.precision)),
          el("td", { class: "num hide-narrow" }, pct(metrics.recall)),
          types.map((t) => el("td", { class: "num hide-narrow" }, pct(metrics.per_type?.[t]?.f1))),
          el("td", { class: "hide-narrow" }, job ? duration(secondsBetween(job.started_at, job.finished_at)) : "–"),
          el("td", { class: "hide-narrow" }, m.base_model.split("/").slice(-2).join("/")),
          el("td", { class: "hide-narrow" }, data ? `${data.name} (${data.sentences} sentences)` : job?.dataset_id ? shortId(job.dataset_id) : "–"),
          el("td", {}, m.stage === "production" ? "" : el("button", { type: "button", class: "secondary promote", onclick: promote(m), "aria-label": `promote ${m.version}` }, "Promote")),
        );
      }),
      "data models",
    ),
    el("p", { class: "hint" }, "Scores are entity-level on each model's own test data (CoNLL-style, as seqeval's default)."),
  );
}

// Promote after the user confirms; the page is drawn again and the outcome shown.
async function promoteModel(version) {
  if (!window.confirm(`Put model ${version} in production? POST /predict serves it within seconds; the current production model is archived.`)) return;
  try {
    await api(`/models/${encodeURIComponent(version)}/promote`, { method: "POST" });
    await route();
    flash(`Model ${version} is now in production.`, { ok: true });
  } catch (err) {
    flash("", { err });
  }
}

async function viewModel(root, version) {
  const m = await api(`/models/${encodeURIComponent(version)}`);
  const metrics = m.metrics || {};
  const analysis = el("section", { id: "analysis", "aria-label": "error analysis" }, el("p", { class: "muted" }, "Loading the error analysis…"));
  const promote = () => promoteModel(m.version);
  root.append(
    el("h1", {}, `Model ${m.version}`),
    el(
      "div",
      { class: "panel" },
      el("p", { class: "row" }, stageBadge(m.stage), `base ${m.base_model}`, `· labels ${m.labels.join(", ")}`, `· created ${when(m.created_at)}`),
      el("p", {}, `F1 ${pct(metrics.f1)} · precision ${pct(metrics.precision)} · recall ${pct(metrics.recall)} · strict F1 ${pct(metrics.f1_strict)} · token accuracy ${pct(metrics.token_accuracy)} · ${metrics.sentences ?? "?"} test sentences`),
      m.job_id ? el("p", {}, el("a", { href: `#/jobs/${m.job_id}` }, "the training job")) : null,
      m.stage !== "production" ? el("button", { type: "button", id: "promote", onclick: promote }, "Promote to production") : null,
    ),
    el("h2", {}, "Error analysis"),
    analysis,
  );
  try {
    const a = await api(`/models/${encodeURIComponent(version)}/evaluation`);
    renderAnalysis(analysis, a);
  } catch (err) {
    if (err.status === 404) {
      analysis.replaceChildren(
        el("p", { class: "muted" }, "This model has no stored error analysis (it was trained before the analysis existed). Its scores per type:"),
        metrics.per_type ? renderPerType(metrics.per_type) : "",
      );
    } else {
      analysis.replaceChildren(errorBox(err));
    }
  }
}

// ------------------------------------------------------------------ 5. Bulk

/** Records of a CSV text (RFC 4180: quotes, doubled quotes, newlines inside quotes), each
 * with the line it starts on. */
function parseCsv(text) {
  const records = [];
  let record = [];
  let value = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { value += '"'; i++; }
      else if (ch === '"') quoted = false;
      else { if (ch === "\n") line++; value += ch; }
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { record.push(value); value = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      record.push(value);
      records.push({ line: start, values: record });
      record = []; value = ""; line++; start = line;
    } else value += ch;
  }
  if (value !== "" || record.length) { record.push(value); records.push({ line: start, values: record }); }
  return records.filter((r) => !(r.values.length === 1 && r.values[0] === ""));
}

function csvDocuments(text) {
  const records = parseCsv(text.replace(/^\uFEFF/, ""));
  if (!records.length) throw new ApiError(0, "The CSV file is empty.");
  const header = records[0].values.map((h) => h.trim().toLowerCase());
  const ti = header.indexOf("text");
  const ii = header.indexOf("id");
  if (ti < 0) throw new ApiError(0, "The CSV file needs a header with a “text” column (and optionally “id”).", [`line 1: columns are ${header.join(", ")}`]);
  const problems = [];
  const documents = [];
  for (const r of records.slice(1)) {
    if (r.values.length !== header.length) problems.push(`line ${r.line}: ${r.values.length} fields, the header has ${header.length}`);
    else documents.push({ id: ii >= 0 && r.values[ii] !== "" ? r.values[ii] : String(r.line), text: r.values[ti] });
  }
  if (problems.length) throw new ApiError(0, `The CSV file has ${problems.length} problem${problems.length === 1 ? "" : "s"}.`, problems.slice(0, 50));
  if (!documents.length) throw new ApiError(0, "The CSV file holds no documents.");
  return documents;
}

async function viewBulk(root) {
  const file = el("input", { type: "file", id: "bulk-file", name: "file", required: true, accept: ".jsonl,.json,.csv,.txt" });
  const modelSel = el("select", { id: "bulk-model", name: "model_version" }, el("option", { value: "" }, "production model"));
  const submit = el("button", { type: "submit", id: "bulk-submit" }, "Tag the documents");
  const status = el("div", { id: "bulk-status", "aria-live": "polite" });
  const form = el(
    "form",
    { class: "panel", id: "bulk-form" },
    el("div", { class: "grid-form" }, field("Documents (JSONL or CSV)", file), field("Model", modelSel), el("div", {}, submit)),
    el("p", { class: "hint" }, "JSONL: one {\"id\", \"text\"} object per line · CSV: a header with a “text” column and optionally “id”."),
  );
  const recent = el("div");
  root.append(el("h1", {}, "Bulk prediction"), form, status, el("h2", {}, "Recent bulk jobs"), recent);

  api("/models?limit=500")
    .then(({ items }) => modelSel.append(...items.map((m) => el("option", { value: m.version }, `${m.version} (${m.stage})`))))
    .catch(() => {});

  const loadRecent = async () => {
    const { items } = await api("/jobs?type=predict&limit=20");
    recent.replaceChildren(
      items.length
        ? table(["job", "type", "status", "progress", el("th", { scope: "col", class: "hide-narrow" }, "stage"), el("th", { scope: "col", class: "hide-narrow" }, "ETA / took"), el("th", { scope: "col", class: "hide-narrow" }, "model"), el("th", { scope: "col", class: "hide-narrow" }, "created")], items.map(jobRow), "data jobs")
        : el("p", { class: "muted" }, "None yet."),
    );
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    const f = file.files[0];
    submit.disabled = true;
    status.replaceChildren(el("p", { class: "muted" }, "Sending…"));
    try {
      let job;
      if (/\.csv$/i.test(f.name)) {
        const documents = csvDocuments(await f.text());
        const body = { documents };
        if (modelSel.value) body.model_version = modelSel.value;
        job = await api("/jobs/predict", { method: "POST", json: body });
      } else {
        const data = new FormData();
        data.append("file", f);
        if (modelSel.value) data.append("model_version", modelSel.value);
        job = await api("/jobs/predict", { method: "POST", form: data });
      }
      every(1000, async () => {
        const j = await api(`/jobs/${job.id}`);
        status.replaceChildren(
          el(
            "div",
            { class: "panel", "data-status": j.status },
            el("p", { class: "row" }, "Job ", el("a", { href: `#/jobs/${j.id}` }, shortId(j.id)), statusBadge(j.status), `${j.documents} documents · model ${j.model_version}`),
            progressBar(j, "bulk job progress"),
            j.error ? errorBox(new Error(j.error)) : null,
            j.status === "succeeded" ? downloadResults(j) : null,
          ),
        );
        if (!ACTIVE.has(j.status)) {
          await loadRecent();
          return false;
        }
        return true;
      });
    } catch (err) {
      status.replaceChildren(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  await loadRecent();
}

route();
