// ms8-jobs dashboard: keeps a server-rendered page live with Server-Sent Events.
//
// <body data-live="all">      listens to /events: progress moves bars in place; any
//                              other change re-renders <main> (at most once a second).
// <body data-live="job:ID">   listens to /jobs/ID/events: each event moves the bar; a
//                              new state re-renders <main>; the stream ends with the job.
// <form data-confirm="...">   asks before it is sent.
(() => {
  "use strict";
  document.querySelectorAll("[data-submit-on-change]").forEach((field) => {
    field.addEventListener("change", () => field.form.submit());
  });
  // Buttons that act on many jobs ask first (listened on the document: <main> is
  // re-rendered live, and its forms with it).
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset?.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  const live = document.body.dataset.live;
  if (!live || !window.EventSource) return;
  const status = document.getElementById("live-status");
  const MIN_INTERVAL = 1000;
  let last = 0, timer = null, inFlight = false;

  function setProgress(id, percent, message) {
    document.querySelectorAll(`[data-progress-for="${id}"]`).forEach((bar) => {
      bar.setAttribute("aria-valuenow", percent);
      bar.querySelector(".fill").style.width = `${percent}%`;
      bar.querySelector(".label").textContent = `${percent}%` + (message ? ` · ${message}` : "");
    });
  }

  async function refresh() {
    if (inFlight) { schedule(); return; }
    inFlight = true; last = Date.now();
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html")
        .getElementById("main");
      const main = document.getElementById("main");
      if (!fresh || !main) return;
      const open = new Set([...main.querySelectorAll("[data-job-id] details[open]")]
        .map((d) => d.closest("[data-job-id]").dataset.jobId));
      fresh.querySelectorAll("[data-job-id]").forEach((el) => {
        if (open.has(el.dataset.jobId)) el.querySelector("details")?.setAttribute("open", "");
      });
      main.replaceWith(fresh);
    } finally { inFlight = false; }
  }

  function schedule() {
    if (timer) return;
    const wait = Math.max(0, MIN_INTERVAL - (Date.now() - last));
    timer = setTimeout(() => { timer = null; refresh(); }, wait);
  }

  let source;
  if (live === "all") {
    source = new EventSource("/events");
    source.addEventListener("change", (event) => {
      const change = JSON.parse(event.data);
      if (change.state === "progress") {
        change.ids.forEach((id) => setProgress(id, change.progress, change.message));
      } else {
        schedule();
      }
    });
    source.addEventListener("resync", schedule);
  } else if (live.startsWith("job:")) {
    const id = live.slice(4);
    source = new EventSource(`/jobs/${id}/events`);
    source.addEventListener("job", (event) => {
      const job = JSON.parse(event.data);
      setProgress(job.id, job.progress, job.progress_message);
      const shown = document.querySelector(`[data-job-id="${job.id}"]`);
      if (shown && shown.dataset.jobState !== job.state) schedule();
    });
    source.addEventListener("end", () => { source.close(); status?.classList.remove("on"); schedule(); });
    source.addEventListener("gone", () => { source.close(); schedule(); });
  }
  if (!source) return;
  source.onopen = () => status?.classList.add("on");
  source.onerror = () => status?.classList.remove("on");
})();
