// Rendering of entities and of the error analysis (shared/ner/analysis.py's JSON).
// One ES module used twice: the web page imports it from /static/analysis.js, and
// `ner evaluate --errors report.html` inlines it, so both show errors the same way.
// Plain DOM, no dependencies; text always goes in through textContent (never innerHTML).

// Light colours only: dark text on each keeps a contrast above 7:1.
const PALETTE = [
  "#ffd8a8", "#b2f2bb", "#a5d8ff", "#fcc2d7", "#ffec99", "#d0bfff", "#99e9f2",
  "#c0eb75", "#ffc9c9", "#eebefa", "#96f2d7", "#ffe066", "#bac8ff", "#dee2e6",
];
// The usual types (CoNLL, OntoNotes, GMB) get distinct colours; any other label a stable
// one from its name, so a label has the same colour on every page and in every report.
const KNOWN = {
  PER: 1, PERSON: 1, LOC: 2, GPE: 12, ORG: 0, MISC: 5, DATE: 4, TIME: 11, NORP: 3,
  FAC: 6, PRODUCT: 7, EVENT: 8, WORK_OF_ART: 9, LAW: 10, LANGUAGE: 13, MONEY: 7,
  PERCENT: 10, QUANTITY: 11, ORDINAL: 13, CARDINAL: 6,
  GEO: 2, TIM: 4, ART: 9, EVE: 8, NAT: 10,
};

export const KIND_NAMES = {
  wrong_type: "wrong type",
  wrong_boundary: "wrong boundary",
  wrong_type_and_boundary: "wrong type and boundary",
  missed: "missed",
  spurious: "spurious",
};

/** A stable pastel colour per label (dark text stays readable on all of them). */
export function labelColor(label) {
  const known = KNOWN[String(label).toUpperCase()];
  if (known !== undefined) return PALETTE[known];
  let h = 0;
  for (const ch of String(label)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** `text` with `spans` ({start, end, label, score?}) highlighted; `focus` spans outlined.
 * `focusable` puts each entity in the tab order (its tip shows on focus): for one text,
 * not for long lists of examples, where hundreds of tab stops would bury the controls. */
export function renderSpans(text, spans, { focus = [], focusable = false } = {}) {
  const out = el("span", { class: "ents" });
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const isFocus = (s) => focus.some((f) => f && f.start === s.start && f.end === s.end && f.label === s.label);
  let pos = 0;
  for (const s of sorted) {
    if (s.start < pos) continue; // overlapping spans never come from the core; keep the first
    if (s.start > pos) out.append(text.slice(pos, s.start));
    const tip = s.score === undefined ? s.label : `${s.label} · score ${Number(s.score).toFixed(3)}`;
    out.append(
      el(
        "mark",
        {
          class: "ent" + (isFocus(s) ? " focus" : ""),
          style: { background: labelColor(s.label) },
          "data-label": s.label,
          "data-tip": tip,
          title: tip,
          tabindex: focusable ? "0" : null,
        },
        text.slice(s.start, s.end),
        el("span", { class: "ent-label", "aria-hidden": "true" }, s.label),
      ),
    );
    pos = s.end;
  }
  if (pos < text.length) out.append(text.slice(pos));
  return out;
}

/** A legend of label colours. */
export function renderLegend(labels) {
  return el(
    "ul",
    { class: "legend", "aria-label": "entity labels" },
    [...labels].sort().map((l) => el("li", {}, el("span", { class: "swatch", style: { background: labelColor(l) } }), l)),
  );
}

const pct = (x) => (x === undefined || x === null ? "–" : (100 * x).toFixed(1));

/** Entity-type confusion matrix as a heat map table (rows gold, columns predicted). */
export function renderHeatmap(confusion, { onSelect } = {}) {
  const { rows, columns, matrix } = confusion;
  const rowTotals = matrix.map((r) => r.reduce((a, b) => a + b, 0));
  const table = el("table", { class: "heatmap" });
  table.append(el("caption", {}, "Rows: gold type · columns: predicted type · shade: share of the row"));
  table.append(
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "gold \\ predicted"), columns.map((c) => el("th", { scope: "col" }, c)))),
  );
  const body = el("tbody");
  rows.forEach((r, i) => {
    const tr = el("tr", {}, el("th", { scope: "row" }, r));
    columns.forEach((c, j) => {
      const n = matrix[i][j];
      const share = rowTotals[i] ? n / rowTotals[i] : 0;
      const diagonal = r === c;
      // Blue for agreement, red for errors; lightness falls with the share.
      const light = 97 - Math.round(share * 62);
      const hue = diagonal ? 210 : 5;
      const cell = el(
        "td",
        {
          class: "cell" + (n ? "" : " zero"),
          style: { background: n ? `hsl(${hue} 70% ${light}%)` : "", color: light < 60 ? "#fff" : "#111" },
          title: `${r} → ${c}: ${n}${rowTotals[i] ? ` (${(share * 100).toFixed(0)}% of ${r})` : ""}`,
          "data-row": r,
          "data-col": c,
        },
        String(n),
      );
      if (onSelect && n && !diagonal) {
        cell.tabIndex = 0;
        cell.classList.add("clickable");
        const pick = () => onSelect(r, c);
        cell.addEventListener("click", pick);
        cell.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), pick()));
      }
      tr.append(cell);
    });
    body.append(tr);
  });
  table.append(body);
  return el("div", { class: "table-scroll", tabindex: "0" }, table);
}

/** Per-type precision / recall / F1 / support, with the error counts when present. */
export function renderPerType(perType, { errors = true } = {}) {
  const kinds = Object.keys(KIND_NAMES);
  const withErrors = errors && Object.values(perType).some((v) => v.errors);
  const head = ["type", "precision", "recall", "F1", "support", ...(withErrors ? kinds.map((k) => KIND_NAMES[k]) : [])];
  const table = el("table", { class: "per-type" });
  table.append(el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))));
  table.append(
    el(
      "tbody",
      {},
      Object.entries(perType).map(([t, v]) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, el("span", { class: "swatch", style: { background: labelColor(t) } }), t),
          el("td", { class: "num" }, pct(v.precision)),
          el("td", { class: "num" }, pct(v.recall)),
          el("td", { class: "num" }, pct(v.f1)),
          el("td", { class: "num" }, String(v.support ?? "–")),
          withErrors ? kinds.map((k) => el("td", { class: "num" }, String(v.errors?.[k] ?? 0))) : [],
        ),
      ),
    ),
  );
  return el("div", { class: "table-scroll", tabindex: "0" }, table);
}

function renderExample(e) {
  const focusGold = e.gold_span ? [e.gold_span] : [];
  const focusPred = e.predicted_span ? [e.predicted_span] : [];
  const what = [
    e.gold_span ? `gold ${e.gold_span.label} “${e.gold_span.text}”` : "no gold entity",
    e.predicted_span ? `predicted ${e.predicted_span.label} “${e.predicted_span.text}”` : "nothing predicted",
  ].join(" → ");
  return el(
    "li",
    { class: "example", "data-kind": e.kind, "data-type": e.type, tabindex: "-1" },
    el(
      "div",
      { class: "example-head" },
      el("span", { class: `kind kind-${e.kind}` }, KIND_NAMES[e.kind] || e.kind),
      el("span", { class: "swatch", style: { background: labelColor(e.type) } }),
      el("strong", {}, e.type),
      el("span", { class: "muted" }, ` ${what}`, e.line ? ` · line ${e.line}` : ` · sentence ${e.sentence + 1}`),
    ),
    el("div", { class: "example-row" }, el("span", { class: "side" }, "gold"), renderSpans(e.text, e.gold, { focus: focusGold })),
    el("div", { class: "example-row" }, el("span", { class: "side" }, "predicted"), renderSpans(e.text, e.predicted, { focus: focusPred })),
  );
}

let uid = 0;

/** The whole analysis: totals, heat map, per-type table and the filterable example errors. */
export function renderAnalysis(root, a) {
  const id = `an${++uid}`;
  const t = a.totals;
  const kinds = Object.keys(KIND_NAMES);
  const typeSel = el("select", { id: `${id}-type`, name: "type" }, el("option", { value: "" }, "all types"), a.types.map((x) => el("option", { value: x }, x)));
  const kindSel = el(
    "select",
    { id: `${id}-kind`, name: "kind" },
    el("option", { value: "" }, "all kinds"),
    kinds.map((k) => el("option", { value: k }, `${KIND_NAMES[k]} (${t[k]})`)),
  );
  const search = el("input", { id: `${id}-q`, type: "search", name: "q", placeholder: "text contains…" });
  const list = el("ol", { class: "examples" });
  const count = el("p", { class: "muted", "aria-live": "polite" });
  const PAGE = 50;
  let matching = [];
  const more = el("button", { type: "button", class: "secondary more-examples", hidden: true }, "Show more");
  more.addEventListener("click", () => {
    const next = list.children.length;
    list.append(...matching.slice(next, next + PAGE).map(renderExample));
    showCount();
    list.children[next]?.focus(); // keyboard users go on reading where the new ones start
  });

  function showCount() {
    const n = matching.length;
    count.textContent = `${n} matching example${n === 1 ? "" : "s"}, ${list.children.length} shown` +
      ` · at most ${a.examples_per_kind_and_type} kept per kind and type`;
    more.hidden = list.children.length >= n;
  }

  function apply() {
    const q = search.value.trim().toLowerCase();
    matching = a.examples.filter(
      (e) => (!typeSel.value || e.type === typeSel.value) && (!kindSel.value || e.kind === kindSel.value) && (!q || e.text.toLowerCase().includes(q)),
    );
    list.replaceChildren(...matching.slice(0, PAGE).map(renderExample));
    showCount();
  }
  for (const c of [typeSel, kindSel]) c.addEventListener("change", apply);
  search.addEventListener("input", apply);

  // A click on an off-diagonal cell filters the examples to that confusion.
  const onSelect = (row, col) => {
    if (row === "spurious") { kindSel.value = "spurious"; typeSel.value = col; }
    else if (col === "missed") { kindSel.value = "missed"; typeSel.value = row; }
    else { kindSel.value = ""; typeSel.value = row; search.value = ""; }
    apply();
    list.scrollIntoView({ block: "nearest" });
  };

  root.replaceChildren(
    el(
      "ul",
      { class: "totals" },
      el("li", {}, el("strong", {}, String(a.sentences)), " sentences"),
      el("li", {}, el("strong", {}, String(t.gold)), " gold entities"),
      el("li", {}, el("strong", {}, String(t.predicted)), " predicted"),
      el("li", {}, el("strong", {}, String(t.correct)), " correct"),
      kinds.map((k) => el("li", { class: `kind-${k}` }, el("strong", {}, String(t[k])), ` ${KIND_NAMES[k]}`)),
    ),
    el("h3", {}, "Confusion matrix"),
    renderHeatmap(a.confusion, { onSelect }),
    el("h3", {}, "Per type"),
    renderPerType(a.per_type),
    el("h3", {}, "Example errors"),
    el(
      "div",
      { class: "filters", role: "group", "aria-label": "filter the examples" },
      el("label", { for: typeSel.id }, "Type "), typeSel,
      el("label", { for: kindSel.id }, "Kind "), kindSel,
      el("label", { for: search.id }, "Search "), search,
    ),
    count,
    list,
    more,
  );
  apply();
  return { typeSel, kindSel, apply };
}
