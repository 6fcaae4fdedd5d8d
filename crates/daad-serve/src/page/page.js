// daad results browser: gallery sorted by score, threshold slider with counts and the ROC
// operating point, defect filters, detail view, and (served page only) live scoring.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const live = document.body.dataset.live === "1";
  const state = { data: null, images: [], threshold: 0.5, hidden: new Set(), open: -1 };

  function fmt(v, d) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(d === undefined ? 4 : d); }
  function verdictOf(score) { return score >= state.threshold ? "anomalous" : "normal"; }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) { if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]); }
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function authHeaders() {
    const t = sessionStorage.getItem("daad-token");
    return t ? { Authorization: "Bearer " + t } : {};
  }
  async function apiFetch(url, opts) {
    opts = opts || {};
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await fetch(url, Object.assign({}, opts, { headers: Object.assign({}, opts.headers || {}, authHeaders()) }));
      if (r.status !== 401 || attempt === 1) return r;
      const t = window.prompt("This server needs its access token:");
      if (!t) return r;
      sessionStorage.setItem("daad-token", t.trim());
    }
  }

  // --- ROC over the labelled images -------------------------------------------------------
  function labelled() { return state.images.filter((im) => im.anomalous === true || im.anomalous === false); }
  function rocCurve() {
    const ims = labelled().slice().sort((a, b) => b.score - a.score);
    const P = ims.filter((i) => i.anomalous).length, N = ims.length - P;
    if (!P || !N) return null;
    const pts = [[0, 0]];
    let tp = 0, fp = 0;
    for (let i = 0; i < ims.length; i++) {
      if (ims[i].anomalous) tp++; else fp++;
      // One point per distinct score, so ties make a diagonal step.
      if (i + 1 === ims.length || ims[i + 1].score !== ims[i].score) pts.push([fp / N, tp / P]);
    }
    let auc = 0;
    for (let i = 1; i < pts.length; i++) auc += (pts[i][0] - pts[i - 1][0]) * (pts[i][1] + pts[i - 1][1]) / 2;
    return { pts, auc, P, N };
  }

  function updateCounts() {
    let tp = 0, fp = 0, tn = 0, fn = 0;
    for (const im of labelled()) {
      const flagged = im.score >= state.threshold;
      if (im.anomalous) { if (flagged) tp++; else fn++; } else { if (flagged) fp++; else tn++; }
    }
    $("tp").textContent = tp; $("fp").textContent = fp; $("tn").textContent = tn; $("fn").textContent = fn;
    const P = tp + fn, N = fp + tn;
    const tpr = P ? tp / P : null, fpr = N ? fp / N : null;
    const roc = state.roc;
    $("rates").textContent = (P + N)
      ? `TPR ${fmt(tpr, 3)} · FPR ${fmt(fpr, 3)}` + (roc ? ` · image AUROC ${fmt(roc.auc, 3)}` : "")
      : "no labelled images";
    if (tpr !== null && fpr !== null) {
      $("roc-point").setAttribute("cx", (fpr * 100).toFixed(2));
      $("roc-point").setAttribute("cy", ((1 - tpr) * 100).toFixed(2));
    }
    // Per-defect detection counts on the filter chips.
    for (const chip of document.querySelectorAll("#filters [data-defect]")) {
      const d = chip.dataset.defect;
      const ims = state.images.filter((im) => im.defect === d);
      const flagged = ims.filter((im) => im.score >= state.threshold).length;
      chip.querySelector(".n").textContent = ` ${flagged}/${ims.length} flagged`;
    }
  }

  function setThreshold(t) {
    state.threshold = t;
    $("threshold-value").textContent = fmt(t, 4);
    for (const card of document.querySelectorAll(".card, .live-item")) {
      const v = verdictOf(Number(card.dataset.score));
      card.classList.toggle("anomalous", v === "anomalous");
      card.classList.toggle("normal", v === "normal");
      const b = card.querySelector(".badge");
      if (b) { b.textContent = v; b.className = "badge " + v; }
      const truth = card.dataset.truth;
      card.classList.toggle("wrong", truth !== undefined && truth !== "" && (truth === "anomalous") !== (v === "anomalous"));
    }
    updateCounts();
  }

  function setupSlider() {
    const s = $("threshold");
    const scores = state.images.map((i) => i.score);
    const t0 = state.data && state.data.threshold;
    const has = t0 !== null && t0 !== undefined;
    const lo0 = Math.min(...scores, has ? t0 : 0, 0), hi0 = Math.max(...scores, has ? t0 : 1, 1);
    // A margin beyond the extreme scores, so the ends of the slider flag everything / nothing.
    const pad = (hi0 - lo0) * 0.01 || 0.01;
    const lo = lo0 - pad, hi = hi0 + pad;
    s.min = lo; s.max = hi; s.step = "any";
    const start = t0 !== null && t0 !== undefined ? t0 : (lo + hi) / 2;
    s.value = start;
    s.addEventListener("input", () => setThreshold(Number(s.value)));
    $("reset").addEventListener("click", () => { s.value = start; setThreshold(start); });
    $("reset").disabled = t0 === null || t0 === undefined;
    setThreshold(start);
  }

  function setupFilters() {
    const defects = [...new Set(state.images.map((i) => i.defect))].sort((a, b) =>
      (a === "good") - (b === "good") || a.localeCompare(b));
    const box = $("filters");
    box.textContent = "";
    for (const d of defects) {
      const lab = el("label", { "data-defect": d });
      const cb = el("input", { type: "checkbox", value: d });
      cb.checked = true;
      cb.addEventListener("change", () => {
        if (cb.checked) state.hidden.delete(d); else state.hidden.add(d);
        applyFilter();
      });
      lab.append(cb, el("span", {}, d), el("span", { class: "n muted" }, ""));
      box.append(lab);
    }
  }

  function applyFilter() {
    let shown = 0;
    for (const card of document.querySelectorAll(".card")) {
      const hide = state.hidden.has(card.dataset.defect);
      card.hidden = hide;
      if (!hide) shown++;
    }
    $("summary").textContent = state.images.length
      ? `${shown} of ${state.images.length} test images, highest score first; click one for input, reconstruction, anomaly map, overlay and mask.`
      : (live ? "No test set loaded (start the server with --data ROOT --category NAME to see one). Drop images above to score them." : "No images.");
  }

  function buildGallery() {
    const g = $("gallery");
    g.textContent = "";
    state.images.forEach((im, i) => {
      const truth = im.anomalous === true ? "anomalous" : im.anomalous === false ? "normal" : "";
      const card = el("div", { class: "card", tabindex: "0", "data-index": i, "data-score": im.score,
        "data-defect": im.defect, "data-truth": truth, title: im.name });
      const img = el("img", { src: im.overlay || im.input, alt: im.name, loading: "lazy" });
      const row = el("div", { class: "row" });
      row.append(el("span", { class: "score" }, fmt(im.score, 3)), el("span", { class: "badge" }, ""));
      card.append(img, row, el("div", { class: "name" }, im.name),
        el("div", { class: "truth" }, truth ? `truth: ${im.defect}` : ""));
      card.addEventListener("click", () => openDetail(i));
      card.addEventListener("keydown", (e) => { if (e.key === "Enter") openDetail(i); });
      g.append(card);
    });
  }

  // --- detail view -------------------------------------------------------------------------
  function panel(src, caption) {
    const f = el("figure");
    f.append(src ? el("img", { src, alt: caption }) : el("div", { class: "none" }, "none"), el("figcaption", {}, caption));
    return f;
  }
  function openDetail(i) {
    const visible = [...document.querySelectorAll(".card")].filter((c) => !c.hidden).map((c) => Number(c.dataset.index));
    if (!visible.length) return;
    if (!visible.includes(i)) i = visible[0];
    state.open = i;
    const im = state.images[i];
    const v = verdictOf(im.score);
    $("detail-title").textContent = `${im.name} — score ${fmt(im.score)} (${v})`;
    const p = $("detail-panels");
    p.textContent = "";
    p.append(panel(im.input, "input"), panel(im.reconstruction, "reconstruction"), panel(im.map, "anomaly map"),
      panel(im.overlay, "overlay"), panel(im.mask, "ground-truth mask"));
    $("detail-info").textContent = `R ${fmt(im.r, 6)} · L ${fmt(im.l, 6)} · threshold ${fmt(state.threshold)} · truth: ${
      im.anomalous === true ? "anomalous (" + im.defect + ")" : im.anomalous === false ? "normal" : "unknown"}`;
    $("detail").hidden = false;
  }
  function step(d) {
    const visible = [...document.querySelectorAll(".card")].filter((c) => !c.hidden).map((c) => Number(c.dataset.index));
    const k = visible.indexOf(state.open);
    if (k >= 0 && visible.length) openDetail(visible[(k + d + visible.length) % visible.length]);
  }
  function closeDetail() { $("detail").hidden = true; state.open = -1; }
  $("close").addEventListener("click", closeDetail);
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("detail").addEventListener("click", (e) => { if (e.target === $("detail")) closeDetail(); });
  document.addEventListener("keydown", (e) => {
    if ($("detail").hidden) return;
    if (e.key === "Escape") closeDetail();
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });

  // --- live scoring (served page) ----------------------------------------------------------
  async function scoreFile(file) {
    $("live-status").textContent = `scoring ${file.name}…`;
    try {
      const r = await apiFetch("v1/predict?heatmap=1&reconstruction=1", {
        method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
      const res = body.results[0];
      const item = el("div", { class: "live-item", "data-score": res.score, "data-name": file.name });
      const png = (b) => b ? "data:image/png;base64," + b : null;
      const meta = el("div", { class: "meta" });
      meta.append(el("div", {}, file.name), el("div", { class: "score" }, "score " + fmt(res.score)),
        el("span", { class: "badge" }, ""),
        el("div", { class: "muted" }, `R ${fmt(res.r, 6)} · L ${fmt(res.l, 6)} · ${fmt(res.timings.model_ms, 1)} ms model, batch ${res.timings.batch_size}`));
      const fig = (src, cap) => { const f = el("figure"); f.append(el("img", { src, alt: cap }), el("figcaption", {}, cap)); return f; };
      item.append(meta, fig(URL.createObjectURL(file), "input"));
      if (res.reconstruction_png) item.append(fig(png(res.reconstruction_png), "reconstruction"));
      if (res.map_png) item.append(fig(png(res.map_png), "anomaly map"));
      if (res.heatmap_png) item.append(fig(png(res.heatmap_png), "overlay"));
      $("live-results").prepend(item);
      $("live-status").textContent = "";
      setThreshold(state.threshold);
    } catch (e) {
      $("live-status").innerHTML = "";
      $("live-status").append(el("span", { class: "error" }, `${file.name}: ${e.message}`));
    }
  }
  function setupLive() {
    $("live").hidden = false;
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("over");
      for (const f of e.dataTransfer.files) scoreFile(f);
    });
    $("upload").addEventListener("change", (e) => { for (const f of e.target.files) scoreFile(f); e.target.value = ""; });
  }

  function start(data) {
    state.data = data;
    state.images = (data.images || []).slice().sort((a, b) => b.score - a.score);
    const m = data.model || {};
    $("model").textContent = `${m.variant || "?"} · ${m.image_size || "?"} px · run ${m.run || "?"} (${m.run_id || "?"}) · stored threshold ${fmt(data.threshold)}`;
    state.roc = rocCurve();
    $("roc-line").setAttribute("points", state.roc
      ? state.roc.pts.map(([x, y]) => `${(x * 100).toFixed(2)},${((1 - y) * 100).toFixed(2)}`).join(" ") : "");
    $("roc").style.display = state.roc ? "" : "none";
    setupFilters();
    buildGallery();
    setupSlider();
    applyFilter();
    document.body.dataset.ready = "1";
  }

  const embedded = $("daad-data");
  if (live) setupLive();
  if (embedded) {
    start(JSON.parse(embedded.textContent));
  } else {
    apiFetch("v1/report").then((r) => r.json()).then(start).catch((e) => {
      $("summary").textContent = "cannot load the report: " + e.message;
      start({ images: [], model: {}, threshold: null });
    });
  }
})();
