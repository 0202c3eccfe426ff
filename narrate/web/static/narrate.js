// narrate serve: the page's behaviour, vanilla JavaScript shipped with narrate (no CDN).
// Live progress polls the JSON API; the player follows the word track on every animation
// frame (requestAnimationFrame + binary search on start_ms), not on coarse timeupdate ticks.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const FINAL = new Set(["done", "partial", "failed", "cancelled"]);

async function api(path, options = {}) {
  const headers = Object.assign({ "Accept": "application/json" }, options.headers || {});
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = CSRF;
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    const error = new Error(body.error || response.statusText);
    error.hint = body.hint;
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
}

function postForm(action, label, className) {
  return el("form", { method: "post", action: action + (action.includes("?") ? "&" : "?") + "csrf=" + encodeURIComponent(CSRF) },
    el("button", { class: className || null, text: label }));
}

// Poll ``task`` every ``interval_ms`` while the page is visible, until it returns false.
function poll(task, interval_ms) {
  let stopped = false;
  async function round() {
    if (stopped) return;
    if (!document.hidden) {
      try { if ((await task()) === false) { stopped = true; return; } } catch (error) { console.warn(error); }
    }
    setTimeout(round, interval_ms);
  }
  setTimeout(round, interval_ms);
}

// --- the jobs list ----------------------------------------------------------------------

function jobsPage() {
  const body = document.querySelector("#jobs tbody");
  const mode = document.querySelector(".mode")?.textContent.trim();
  const reasons = new Map(); // job -> [status, text]

  function row(job) {
    const done = job.segments_done, total = job.segments_total;
    const actions = el("td", { class: "actions" });
    if (!FINAL.has(job.status)) actions.append(postForm(`/jobs/${job.job}/cancel?next=/`, "Cancel", "danger"));
    else if (["failed", "partial"].includes(job.status) || (mode === "embedded" && job.status === "cancelled"))
      actions.append(el("a", { href: `/jobs/${job.job}`, text: "Retry…" }));
    const why = el("div", { class: "reasons" });
    const known = reasons.get(job.job);
    if (known && known[0] === job.status) why.textContent = known[1];
    return el("tr", { "data-job": job.job, "data-status": job.status },
      el("td", {},
        el("a", { href: `/jobs/${job.job}`, text: job.title || job.job.slice(0, 8) }),
        el("div", { class: "sub", text: `${job.job.slice(0, 8)} · ${job.priority}` + (job.created_at ? ` · ${new Date(job.created_at).toLocaleString()}` : "") }),
        why),
      el("td", {}, el("span", { class: `badge s-${job.status}`, text: job.status })),
      el("td", {},
        el("progress", { max: String(total || 1), value: String(done) }), " ",
        el("span", { class: "count", text: `${done}/${total}` }),
        job.segments_failed ? el("span", { class: "failed", text: ` ${job.segments_failed} failed` }) : null),
      actions);
  }

  async function explain(job) {
    // failures with their reasons: the job's status (once per status change)
    const view = await api(`/api/jobs/${job.job}`);
    const first = view.failures.slice(0, 3).map(f => `chapter ${f.chapter}${f.segment !== null ? `, segment ${f.segment}` : ""}: ${f.error}`);
    reasons.set(job.job, [job.status, [view.error, ...first].filter(Boolean).join(" · ")]);
  }

  async function refresh() {
    const jobs = await api("/api/jobs?limit=50");
    const needing = jobs.filter(j => (j.segments_failed || ["failed", "cancelled", "partial"].includes(j.status)) && reasons.get(j.job)?.[0] !== j.status);
    await Promise.all(needing.slice(0, 10).map(explain));
    body.replaceChildren(...(jobs.length ? jobs.map(row) : [el("tr", { class: "empty" }, el("td", { colspan: "4", text: "No jobs yet: render a document below." }))]));
  }

  refresh().catch(console.warn);
  poll(refresh, 1500);
}

// --- a job ----------------------------------------------------------------------------

function jobPage() {
  const job = document.body.dataset.job;
  const mode = document.querySelector(".mode")?.textContent.trim();

  function showStatus(view) {
    document.body.dataset.status = view.status;
    const badge = document.getElementById("status-badge");
    badge.textContent = view.status;
    badge.className = `badge s-${view.status}`;
    const progress = document.getElementById("progress");
    progress.max = view.segments.total || 1;
    progress.value = view.segments.done + view.segments.failed;
    document.getElementById("counts").textContent =
      `${view.segments.done}/${view.segments.total} segments` + (view.segments.failed ? `, ${view.segments.failed} failed` : "");
    document.getElementById("eta").textContent = view.eta_s ? `about ${clock(view.eta_s * 1000)} left` : "";
    const error = document.getElementById("job-error");
    error.hidden = !view.error; error.textContent = view.error || "";
    const attention = document.getElementById("attention");
    if (view.attention) { attention.hidden = false; attention.textContent = view.attention; }
    document.getElementById("chapters").replaceChildren(...view.chapters.map(c => el("tr", { "data-chapter": String(c.index) },
      el("td", { text: String(c.index) }), el("td", { text: c.title }),
      el("td", {}, el("span", { class: `badge s-${c.status}`, text: c.status }), c.gaps.length ? el("span", { class: "failed", text: ` ${c.gaps.length} gap(s)` }) : null),
      el("td", { text: `${c.segments_done}/${c.segments_total}` }),
      el("td", { text: c.duration_ms ? clock(c.duration_ms) : "" }),
      el("td", {}, c.status === "done" ? el("a", { class: "listen", href: `/jobs/${job}/chapters/${c.index}`, text: "Listen" }) : null))));
    const items = [
      ...view.failures.map(f => el("li", {}, el("strong", { text: `chapter ${f.chapter} (${f.title})` + (f.segment !== null ? `, segment ${f.segment}` : "") }), `: ${f.error}`, f.text ? el("q", { text: f.text }) : null)),
      ...view.retrying.map(r => el("li", { class: "retrying", text: `retrying chapter ${r.chapter}, segment ${r.segment} (retry ${r.retries}): ${r.error}` })),
    ];
    document.getElementById("failures").replaceChildren(...items);
    document.getElementById("failures-card").hidden = items.length === 0;
    const actions = document.getElementById("actions");
    const buttons = [];
    const retryable = ["failed", "partial"].concat(mode === "embedded" ? ["cancelled"] : []);
    if (!FINAL.has(view.status)) buttons.push(postForm(`/jobs/${job}/cancel`, "Cancel", "danger"));
    else if (retryable.includes(view.status) && document.body.dataset.rerun === "1")
      buttons.push(postForm(`/jobs/${job}/retry`, mode === "distributed" ? "Retry failed segments" : "Render again"));
    actions.replaceChildren(...buttons);
  }

  let chapters = [];

  function size(bytes) {
    return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
  }

  function showDownloads(downloads) {
    const box = document.getElementById("downloads");
    box.dataset.state = downloads.state;
    if (downloads.state !== "ready") {
      box.replaceChildren(el("p", { class: "sub", text: downloads.message || "" }));
      return;
    }
    const link = (d, text) => el("a", { href: `/jobs/${job}/files/${encodeURIComponent(d.name)}`, title: `${d.name} · ${size(d.size_bytes)}`, text });
    const book = downloads.files.filter(d => d.chapter === null).map(d =>
      el("li", {}, link(d, d.name), " ", el("span", { class: "kind", text: `${d.label} · ${size(d.size_bytes)}` })));
    const rows = chapters.map(c => [c, downloads.files.filter(d => d.chapter === c.index)]).filter(([, files]) => files.length)
      .map(([c, files]) => el("tr", {}, el("td", { text: String(c.index) }), el("td", { text: c.title }), el("td", {}, ...files.map(d => link(d, d.label)))));
    box.replaceChildren(el("ul", { class: "files" }, ...book), el("table", { class: "files" }, ...rows));
  }

  async function refresh() {
    const view = await api(`/api/jobs/${job}`);
    chapters = view.chapters;
    showStatus(view);
    if (!FINAL.has(view.status)) return true;
    const downloads = await api(`/api/jobs/${job}/downloads`);
    showDownloads(downloads);
    return downloads.state === "exporting" || downloads.state === "waiting";
  }

  const state = document.getElementById("downloads").dataset.state;
  if (!FINAL.has(document.body.dataset.status) || state === "exporting" || state === "waiting") poll(refresh, 1000);
}

// --- the player -------------------------------------------------------------------------

// The index of the word being said at ``ms``: the last word starting at or before it,
// while it lasts (between words, none: -1).
function wordAt(starts, ends, ms) {
  let lo = 0, hi = starts.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] <= ms) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found >= 0 && ms < ends[found] ? found : -1;
}

async function playerPage() {
  const job = document.body.dataset.job;
  const number = Number(document.body.dataset.chapter);
  const audio = document.getElementById("audio");
  const article = document.getElementById("text");
  const clockNode = document.getElementById("clock");
  performance.mark("narrate:player-start");

  let chapter;
  try {
    chapter = await api(`/api/jobs/${job}/chapters/${number}`);
  } catch (error) {
    article.textContent = `${error.message}${error.hint ? ` (${error.hint})` : ""}`;
    article.dataset.state = "error";
    return;
  }
  const words = chapter.words, text = chapter.text;
  const starts = Float64Array.from(words, w => w.start_ms);
  const ends = Float64Array.from(words, w => w.end_ms);
  const spans = new Array(words.length);

  // the chapter's text, each word a span (by its character offsets); words that share
  // characters (a formula said in several words) share the span
  const fragment = document.createDocumentFragment();
  let position = 0, last = null;
  words.forEach((word, i) => {
    if (word.char_start >= position && word.char_end > word.char_start) {
      if (word.char_start > position) fragment.append(text.slice(position, word.char_start));
      last = el("span", { class: "w", "data-i": String(i), text: text.slice(word.char_start, word.char_end) });
      fragment.append(last);
      position = word.char_end;
    }
    spans[i] = last;
  });
  fragment.append(text.slice(position));
  article.replaceChildren(fragment);
  article.dataset.state = "ready";
  article.dataset.words = String(words.length);

  // keep the lit word in view; checked after the frame that lit it (reading its position
  // in the same frame would force a layout of the whole chapter before the paint)
  let follow = null;
  function keepInView() {
    const span = follow;
    follow = null;
    if (!span || !span.classList.contains("on")) return;
    const box = span.getBoundingClientRect();
    if (box.top < 80 || box.bottom > window.innerHeight - 20) span.scrollIntoView({ block: "center", behavior: audio.paused ? "auto" : "smooth" });
  }

  let lit = -1, litSpan = null;
  function light(index) {
    const span = index >= 0 ? spans[index] : null;
    if (span !== litSpan) {
      if (litSpan) litSpan.classList.remove("on");
      if (span) {
        span.classList.add("on");
        if (follow === null) setTimeout(keepInView, 0);
        follow = span;
      }
      litSpan = span;
    }
    lit = index;
    article.dataset.lit = String(index);
  }

  // every frame: where the audio is, which word that is
  let shown = "";
  function frame() {
    const ms = audio.currentTime * 1000;
    const index = wordAt(starts, ends, ms);
    if (index !== lit) light(index);
    const now = clock(ms);
    if (now !== shown) { clockNode.textContent = now; shown = now; }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);

  article.addEventListener("click", event => {
    const span = event.target.closest(".w");
    if (!span) return;
    const index = Number(span.dataset.i);
    audio.currentTime = starts[index] / 1000;
    audio.play().catch(() => {});
  });

  const wanted = Number(new URLSearchParams(location.search).get("t"));
  if (wanted > 0) {
    const seek = () => { audio.currentTime = wanted / 1000; };
    if (audio.readyState >= 1) seek(); else audio.addEventListener("loadedmetadata", seek, { once: true });
  }

  // search every word of the job
  const hits = document.getElementById("hits");
  document.getElementById("search").addEventListener("submit", async event => {
    event.preventDefault();
    const query = document.getElementById("q").value.trim();
    if (!query) return;
    hits.hidden = false;
    let found;
    try {
      found = await api(`/api/jobs/${job}/search?q=${encodeURIComponent(query)}`);
    } catch (error) {
      hits.replaceChildren(el("li", { class: "error", text: error.message }));
      return;
    }
    if (!found.hits.length) { hits.replaceChildren(el("li", { text: `“${query}” is not said in the finished chapters.` })); return; }
    const items = found.hits.map(hit => {
      const context = hit.context;
      const item = el("li", { "data-chapter": String(hit.chapter), "data-ms": String(hit.start_ms) },
        el("span", { class: "where", text: `ch. ${hit.chapter} · ${clock(hit.start_ms)}` }),
        context.slice(0, hit.match_start), el("mark", { text: context.slice(hit.match_start, hit.match_end) }), context.slice(hit.match_end));
      item.addEventListener("click", () => {
        if (hit.chapter === number) { audio.currentTime = hit.start_ms / 1000; audio.play().catch(() => {}); }
        else location.assign(`/jobs/${job}/chapters/${hit.chapter}?t=${hit.start_ms}`);
      });
      return item;
    });
    if (found.truncated) items.push(el("li", { class: "sub", text: `the first ${found.hits.length} are shown` }));
    hits.replaceChildren(...items);
  });

  performance.mark("narrate:player-ready");
  window.narratePlayer = { words, starts, ends, audio, wordAt: ms => wordAt(starts, ends, ms) };
  document.body.dataset.ready = "1";
}

const pages = { index: jobsPage, job: jobPage, player: playerPage };
document.addEventListener("DOMContentLoaded", () => { (pages[document.body.dataset.page] || (() => {}))(); });
