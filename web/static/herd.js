// Herd's pages work without this file; it adds what needs a script: the
// organisation switcher submitting on change, the domain check as you type,
// the branding editor's live preview, and live progress over server-sent
// events. No inline scripts, no libraries.
"use strict";

function onReady(fn) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
  else fn();
}

function setupAutosubmit() {
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.requestSubmit());
  });
}

function setupDomainCheck() {
  const input = document.querySelector("input[data-check-url]");
  const status = document.getElementById("domain-status");
  if (!input || !status) return;
  let timer = null;
  let asked = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const value = input.value.trim();
      if (!value) { status.textContent = ""; status.className = "field-status"; return; }
      asked = value;
      const url = input.dataset.checkUrl + "?domain=" + encodeURIComponent(value);
      try {
        const answer = await fetch(url, { headers: { Accept: "application/json" } });
        const body = await answer.json();
        if (asked !== value) return; // a newer check is under way
        status.textContent = body.message;
        status.className = "field-status " + (body.ok ? "good" : "bad");
        input.setAttribute("aria-invalid", body.ok ? "false" : "true");
      } catch (_) {
        status.textContent = "";
      }
    }, 250);
  });
}

function logRow(task) {
  const row = document.createElement("tr");
  row.dataset.eventId = task.id;
  const status = task.status + (task.changed ? " (changed)" : "");
  [task.at, task.step, task.host, task.task, status].forEach((text, i) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (i === 4) cell.className = "status-" + task.status;
    row.appendChild(cell);
  });
  return row;
}

function appendTask(event) {
  const rows = document.getElementById("log-rows");
  const task = JSON.parse(event.data);
  if (!rows || rows.querySelector('[data-event-id="' + task.id + '"]')) return;
  rows.appendChild(logRow(task));
}

function setupServerLive() {
  const card = document.querySelector("[data-live-server]");
  if (!card || !window.EventSource) return;
  const source = new EventSource(card.dataset.liveServer);
  source.addEventListener("state", (event) => {
    const now = JSON.parse(event.data);
    // A new state changes the timeline and the buttons: show the page anew.
    if (now.state !== card.dataset.state || (now.version || "") !== card.dataset.version) {
      source.close();
      window.location.reload();
    }
  });
  source.addEventListener("task", appendTask);
  source.addEventListener("job", () => { source.close(); window.location.reload(); });
  source.addEventListener("gone", () => source.close());
  window.addEventListener("pagehide", () => source.close());
}

function setupJobLive() {
  const card = document.querySelector("[data-live-job]");
  if (!card || !window.EventSource) return;
  const after = card.dataset.after ? "?after=" + encodeURIComponent(card.dataset.after) : "";
  const source = new EventSource(card.dataset.liveJob + after);
  source.addEventListener("task", appendTask);
  source.addEventListener("end", () => { source.close(); window.location.reload(); });
  window.addEventListener("pagehide", () => source.close());
}

function setupRolloutLive() {
  const card = document.querySelector("[data-live-rollout]");
  if (!card || !window.EventSource) return;
  const source = new EventSource(card.dataset.liveRollout);
  source.addEventListener("progress", (event) => {
    const progress = JSON.parse(event.data);
    if (progress.state !== card.dataset.state) {
      // The buttons depend on the state: show the page anew.
      source.close();
      window.location.reload();
      return;
    }
    document.getElementById("rollout-reason").textContent = progress.reason;
    Object.entries(progress.waves).forEach(([wave, counts]) => {
      const row = document.querySelector('#waves tr[data-wave="' + wave + '"]');
      if (!row) return;
      row.querySelectorAll("[data-count]").forEach((cell) => {
        cell.textContent = counts[cell.dataset.count] || 0;
      });
    });
    Object.entries(progress.targets).forEach(([server, target]) => {
      const row = document.querySelector('tr[data-target="' + server + '"]');
      if (!row) return;
      row.querySelector('[data-field="state"]').textContent = target.state;
      row.querySelector('[data-field="outcome"]').textContent = target.outcome;
    });
  });
  source.addEventListener("end", () => { source.close(); window.location.reload(); });
  window.addEventListener("pagehide", () => source.close());
}

const COLOUR = /^#[0-9a-fA-F]{6}$/;
const PREVIEW_VARS = {
  primary_color: "--pv-primary",
  accent_color: "--pv-accent",
  background_color: "--pv-background",
  text_color: "--pv-text",
};
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];

function setupBrandingPreview() {
  const preview = document.getElementById("brand-preview");
  if (!preview) return;
  document.querySelectorAll("input[data-preview-colour]").forEach((input) => {
    const picker = document.querySelector('input[data-picker-for="' + input.id + '"]');
    const show = () => {
      const value = input.value.trim();
      const valid = value === "" || COLOUR.test(value);
      input.setAttribute("aria-invalid", valid ? "false" : "true");
      const colour = value && valid ? value : input.dataset.default;
      preview.style.setProperty(PREVIEW_VARS[input.dataset.previewColour], colour);
      if (picker && valid) picker.value = colour.toLowerCase();
    };
    input.addEventListener("input", show);
    if (picker) {
      picker.addEventListener("input", () => { input.value = picker.value; show(); });
    }
  });
  document.querySelectorAll("[data-preview-text]").forEach((field) => {
    const target = document.getElementById("preview-" + field.dataset.previewText);
    if (!target) return;
    field.addEventListener("input", () => { target.textContent = field.value; });
  });
  document.querySelectorAll("input[data-preview-image]").forEach((input) => {
    const status = document.getElementById(input.id + "-status");
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      if (!file) return;
      // The server checks the bytes; this only saves a wasted upload.
      let problem = "";
      if (!IMAGE_TYPES.includes(file.type)) problem = "Choose a PNG, JPEG or WebP image.";
      else if (file.size > Number(input.dataset.maxBytes)) problem = "This image is too large.";
      status.textContent = problem;
      status.className = "field-status" + (problem ? " bad" : "");
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      if (problem) return;
      const url = URL.createObjectURL(file);
      if (input.dataset.previewImage === "logo") {
        const logo = document.getElementById("preview-logo");
        logo.src = url;
        logo.hidden = false;
      } else {
        preview.style.setProperty("--pv-banner", 'url("' + url + '")');
      }
    });
  });
}

onReady(() => {
  setupAutosubmit();
  setupBrandingPreview();
  setupDomainCheck();
  setupServerLive();
  setupJobLive();
  setupRolloutLive();
});
