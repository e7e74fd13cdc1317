// Progressive enhancement; without this script every link still works.
"use strict";

async function fragment(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(String(response.status));
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

// "More" appends the next rows in place (the link itself opens the next page).
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a#more[data-rows]");
  if (!link) return;
  event.preventDefault();
  link.setAttribute("aria-busy", "true");
  try {
    const next = await fragment(link.dataset.rows);
    const body = document.getElementById("timeline-rows");
    const rows = Array.from(next.querySelectorAll("#fragment-rows tr"));
    for (const row of rows) body.appendChild(document.importNode(row, true));
    document.getElementById("more-slot").replaceWith(
      document.importNode(next.getElementById("more-slot"), true));
    // Keyboard users carry on from the first new row's payload toggle, or the new link.
    const first = rows.length &&
      body.querySelector(`tr[data-event-id="${rows[0].dataset.eventId}"] summary`);
    (first || document.getElementById("more") || body).focus();
  } catch (_) {
    window.location.href = link.href;
  }
});

// "Why these scores" loads its explanation when first opened (the link inside it opens the
// page with the explanation).
document.addEventListener("toggle", async (event) => {
  const why = event.target;
  if (why.id !== "why" || !why.open || why.dataset.loaded) return;
  why.dataset.loaded = "true";
  const slot = document.getElementById("why-slot");
  if (slot.querySelector("#why-body")) return;
  slot.setAttribute("aria-busy", "true");
  try {
    const next = await fragment(why.dataset.src);
    slot.replaceChildren(document.importNode(next.getElementById("why-body"), true));
  } catch (_) {
    delete why.dataset.loaded;  // the link in the slot still works
  } finally {
    slot.removeAttribute("aria-busy");
  }
}, true);
