// ms8-jobs dashboard: keeps a server-rendered page live with Server-Sent Events.
//
// <body data-live="all">      listens to /events: progress moves bars in place; any
//                              other change re-renders <main> (at most once a second).
// <body data-live="job:ID">   listens to /jobs/ID/events: each event moves the bar; a
//                              new state re-renders <main>; the stream ends with the job.
// <body data-live="every:N">  re-renders <main> every N seconds (a page whose numbers
//                              change with every job of a night, like a nightly run's).
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
  const status = document.getElementById("live-status");
  const MIN_INTERVAL = 1000;
  let last = 0, timer = null, inFlight = false;
  if (live && live.startsWith("every:")) {
    const seconds = Math.max(1, Number(live.slice(6)) || 5);
    status?.classList.add("on");
    const every = setInterval(async () => {
      // The page stops asking once its fresh copy is no longer live (the run ended).
      if ((await refresh()) === "") { clearInterval(every); status?.classList.remove("on"); }
    }, seconds * 1000);
  }
  if (!live || live.startsWith("every:") || !window.EventSource) return;

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
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("main");
      const main = document.getElementById("main");
      if (!fresh || !main) return;
      // Details a person opened (a job's error, a chart's numbers) stay open.
      const keyOf = (el) => el.dataset.jobId ? `job:${el.dataset.jobId}` : `chart:${el.dataset.chart}`;
      const open = new Set([...main.querySelectorAll(":is([data-job-id], [data-chart]) details[open]")]
        .map((d) => keyOf(d.closest("[data-job-id], [data-chart]"))));
      fresh.querySelectorAll("[data-job-id], [data-chart]").forEach((el) => {
        if (open.has(keyOf(el))) el.querySelector("details")?.setAttribute("open", "");
      });
      main.replaceWith(fresh);
      return page.body.dataset.live;
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
