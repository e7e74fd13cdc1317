// "More" without leaving the page: fetch the next rows and append them. Without this
// script the link still works (it opens the next page of the timeline).
"use strict";
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a#more[data-rows]");
  if (!link) return;
  event.preventDefault();
  link.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(link.dataset.rows, { credentials: "same-origin" });
    if (!response.ok) { window.location.href = link.href; return; }
    const fragment = new DOMParser().parseFromString(await response.text(), "text/html");
    const body = document.getElementById("timeline-rows");
    const first = fragment.querySelector("#fragment-rows tr");
    for (const row of Array.from(fragment.querySelectorAll("#fragment-rows tr"))) {
      body.appendChild(document.importNode(row, true));
    }
    document.getElementById("more-slot").replaceWith(
      document.importNode(fragment.getElementById("more-slot"), true));
    const next = document.getElementById("more");
    // Keyboard users carry on from the first new row's payload toggle, or the new link.
    const added = first && body.querySelector(`tr[data-event-id="${first.dataset.eventId}"] summary`);
    (added || next || body).focus();
  } catch (_) {
    window.location.href = link.href;
  }
});
