// The Energy console's one script: refreshes the live parts of a page ([data-live]) every
// second, and sends the withdraw and amend requests of the order page to the orders API.
(function () {
  "use strict";
  const status = (text) => {
    const s = document.getElementById("action-status");
    if (!s) return;
    s.textContent = text;
    s.focus();
  };

  // Live parts: asked for again every second while the page is visible, replaced only when
  // the server's digest of them changed, and left alone while the user is inside one (focus
  // on a link, a button or a field; an open amend form), so nothing moves under the keyboard.
  document.querySelectorAll("[data-live]").forEach((el) => {
    let busy = false;
    const refresh = async () => {
      if (busy || document.hidden) return;
      if (el.querySelector("details[open]")) return;
      const a = document.activeElement;
      if (a && a !== document.body && el.contains(a)) return;
      busy = true;
      try {
        const r = await fetch(el.dataset.live, { cache: "no-store" });
        const digest = r.headers.get("x-digest");
        if (r.ok && digest !== el.dataset.digest) {
          el.innerHTML = await r.text();
          el.dataset.digest = digest || "";
          el.dataset.refreshed = String(Date.now());
        }
      } catch (e) {
        // The server is restarting: the next tick tries again.
      } finally {
        busy = false;
      }
    };
    setInterval(refresh, 1000);
  });

  // The API's answer in words: its message, and every field problem it lists.
  const answer = async (r) => {
    let text = await r.text();
    try {
      const body = JSON.parse(text);
      const problems = (body.errors || []).map((e) => `${e.path}: ${e.message}`);
      text = [body.message || body.state || "", ...problems].filter(Boolean).join("; ") || text;
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
      const s = document.getElementById("action-status");
      if (s) s.textContent = "Press again to withdraw the order.";
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
    if (r.ok) f.closest("details").open = false;
    status(`Amendment: ${await answer(r)}`);
  });
})();
