// The Energy console's one script: refreshes the live parts of a page ([data-live]) every
// second, and sends the withdraw and amend requests of the order page to the orders API.
(function () {
  "use strict";
  const status = (text) => {
    const s = document.getElementById("action-status");
    if (s) s.textContent = text;
  };

  // Live parts: fetched again every second while the page is visible, left alone while the
  // user works inside one (an open amend form, a focused field).
  document.querySelectorAll("[data-live]").forEach((el) => {
    let busy = false;
    const refresh = async () => {
      if (busy || document.hidden) return;
      if (el.querySelector("details[open]")) return;
      const a = document.activeElement;
      if (a && el.contains(a) && a.matches("input, textarea, select")) return;
      busy = true;
      try {
        const r = await fetch(el.dataset.live, { cache: "no-store" });
        if (r.ok) {
          const html = await r.text();
          if (html !== el.dataset.last) {
            el.innerHTML = html;
            el.dataset.last = html;
            el.dataset.refreshed = String(Date.now());
          }
        }
      } catch (e) {
        // The server is restarting: the next tick tries again.
      } finally {
        busy = false;
      }
    };
    setInterval(refresh, 1000);
  });

  const answer = async (r) => {
    let text = await r.text();
    try {
      const body = JSON.parse(text);
      text = body.message || body.state || text;
    } catch (e) {}
    return `${r.status}: ${text}`;
  };

  // Withdraw: the first press arms the button, the second sends DELETE.
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("[data-cancel]");
    if (!b) return;
    if (b.dataset.armed !== "yes") {
      b.dataset.armed = "yes";
      b.textContent = "Press again to withdraw";
      status("Press again to withdraw the order.");
      return;
    }
    b.disabled = true;
    const r = await fetch(b.dataset.cancel, { method: "DELETE" });
    status(`Withdrawal: ${await answer(r)}`);
  });

  // Amend: PUT the edited body.
  document.addEventListener("submit", async (ev) => {
    const f = ev.target.closest("[data-amend]");
    if (!f) return;
    ev.preventDefault();
    const body = f.querySelector("textarea").value;
    const r = await fetch(f.dataset.amend, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body,
    });
    status(`Amendment: ${await answer(r)}`);
    if (r.ok) f.closest("details").open = false;
  });
})();
