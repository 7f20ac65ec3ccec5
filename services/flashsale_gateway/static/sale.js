"use strict";
// The sale page's behaviour. The page itself is static and cached; everything that changes comes
// from /status.js (once, at load) and /api/status (polled). The order path is never in the page:
// it arrives in the status only while the sale is live. The buyer's token comes from the shop's
// login: localStorage "flashsale.token", else the cookie "flashsale_token".
(() => {
  const config = JSON.parse(document.getElementById("sale-config").textContent);
  const byId = (id) => document.getElementById(id);
  const buy = byId("buy"), quantity = byId("quantity"), message = byId("message");
  const countdown = byId("countdown"), errorLine = byId("error"), result = byId("reservation");
  const STATE_TEXT = {
    loading: "Checking the sale…",
    scheduled: "Not started yet.",
    live: "The sale is live.",
    paused: "Paused for a moment: it resumes here by itself.",
    soldout: "Sold out.",
    ended: "The sale has ended.",
  };
  const ORDER_TEXT = {
    reserved: "reserved: placing your order…",
    ordered: "ordered",
    paid: "paid",
    expired: "expired: it was not paid in time",
  };
  const SHOWN_TIME = { dateStyle: "medium", timeStyle: "short" };
  const JSON_ACCEPT = { accept: "application/json" };
  let status = null;
  let pollTimer = 0;
  let busy = false;
  let reservation = null;
  const buyLabel = buy.textContent;

  function token() {
    try {
      const stored = window.localStorage.getItem("flashsale.token");
      if (stored) return stored;
    } catch (_) { /* storage disabled: fall back to the cookie */ }
    const match = document.cookie.match(/(?:^|;\s*)flashsale_token=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  const startsAt = () => {
    const announced = Date.parse(status && status.startsAt);
    return Number.isNaN(announced) ? Date.parse(config.startsAt) : announced;
  };
  const orderPath = () =>
    status && status.state === "live" && typeof status.orderPath === "string" &&
    status.orderPath.startsWith("/") && !status.orderPath.startsWith("//") ? status.orderPath : null;

  function render() {
    const state = status ? status.state : "loading";
    document.body.dataset.state = state;
    let text = STATE_TEXT[state] || "The sale is " + state + ".";
    if (state === "live" && Number.isInteger(status.remaining)) text += " " + status.remaining + " left.";
    message.textContent = text;
    buy.disabled = busy || reservation !== null || orderPath() === null;
    buy.textContent = busy ? "Ordering…" : reservation ? "Reserved" : buyLabel;
    if (quantity) quantity.disabled = buy.disabled;
    tick();
  }

  function tick() {
    const state = status ? status.state : "loading";
    const left = startsAt() - Date.now();
    if ((state !== "scheduled" && state !== "loading") || Number.isNaN(left)) {
      countdown.textContent = "";
    } else if (left <= 0) {
      countdown.textContent = "Starting…";
    } else {
      const s = Math.ceil(left / 1000), pad = (n) => String(n).padStart(2, "0");
      const days = Math.floor(s / 86400);
      countdown.textContent = "Starts in " + (days ? days + "d " : "") +
        pad(Math.floor(s / 3600) % 24) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
    }
  }

  function pollDelay() {
    switch (status ? status.state : "loading") {
      case "scheduled": return startsAt() - Date.now() < 15000 ? 250 : 1000; // faster near the start
      case "loading": case "paused": return 1000;
      case "live": return 3000;
      case "soldout": return 5000; // an unpaid reservation may still give units back
      default: return 0; // ended: nothing will change any more
    }
  }

  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    const base = delay === undefined ? pollDelay() : delay;
    // The jitter spreads a crowd's polls instead of landing them on the same millisecond.
    if (base > 0) pollTimer = setTimeout(poll, base * (0.8 + Math.random() * 0.4));
  }

  async function poll() {
    try {
      const response = await fetch("/api/status", { cache: "no-store", headers: JSON_ACCEPT });
      if (response.ok) return onStatus(await response.json());
      schedulePoll(retryAfter(response, 2));
    } catch (_) {
      schedulePoll(2000);
    }
  }

  function pollNow() {
    clearTimeout(pollTimer);
    poll();
  }

  function onStatus(next) {
    if (next && typeof next.state === "string") {
      status = next;
      render();
    }
    schedulePoll(); // a garbled answer must not end the polling
  }

  const retryAfter = (response, fallback) =>
    1000 * Math.min(30, Math.max(1, parseInt(response.headers.get("retry-after"), 10) || fallback));

  async function answerOf(response) {
    try { return await response.json(); } catch (_) { return {}; }
  }

  function showError(text) {
    errorLine.textContent = text;
  }

  function showReservation(answer) {
    reservation = Object.assign({}, reservation, answer);
    result.hidden = false;
    result.dataset.state = reservation.state;
    byId("reservation-id").textContent = reservation.reservationId;
    byId("reservation-state").textContent = ORDER_TEXT[reservation.state] || reservation.state;
    byId("reservation-quantity").textContent = reservation.quantity || "";
    const expires = Date.parse(reservation.expiresAt);
    byId("reservation-expires").textContent =
      Number.isNaN(expires) ? "" : new Date(expires).toLocaleString(undefined, SHOWN_TIME);
  }

  async function purchase(attempt) {
    const path = orderPath(), bearer = token();
    if (!path) { // no longer live (a retry that outlived the sale): the status line says why
      busy = false;
      return render();
    }
    if (!bearer) return showError("You are not signed in: sign in at the shop, then come back to this page.");
    const asked = quantity ? parseInt(quantity.value, 10) || 1 : 1;
    const units = Math.min(config.perUserLimit, Math.max(1, asked));
    busy = true;
    render();
    showError("");
    let response;
    try {
      response = await fetch(path, {
        method: "POST", cache: "no-store",
        headers: { ...JSON_ACCEPT, authorization: "Bearer " + bearer, "content-type": "application/json" },
        body: JSON.stringify({ quantity: units }),
      });
    } catch (_) {
      busy = false;
      render();
      return showError("The network failed: check your connection and press Buy again.");
    }
    const answer = await answerOf(response);
    busy = false;
    if (response.status === 202 && answer.reservationId) {
      showError("");
      showReservation(answer);
      render();
      pollNow(); // the units left just changed
      return watchOrder(answer.reservationId, 0);
    }
    if ((response.status === 429 || response.status === 503) && attempt < 5) {
      const wait = retryAfter(response, 1);
      busy = true;
      render();
      showError("Many buyers at once: trying again in " + wait / 1000 + " s…");
      return setTimeout(() => purchase(attempt + 1), wait);
    }
    render();
    showError(describeError(response.status, answer));
    if (response.status === 404 || response.status === 410) pollNow(); // the sale changed under us
  }

  function describeError(code, answer) {
    const detail = typeof answer.message === "string" && answer.message ? " (" + answer.message + ")" : "";
    switch (code) {
      case 401: return "Your sign-in is missing or has expired: sign in at the shop again." + detail;
      case 404: return "The sale is not taking orders right now." + detail;
      case 409: return "Fewer units are left than you asked for: choose fewer." + detail;
      case 410: return "Sold out: every unit is taken." + detail;
      case 422: return "The order was not understood" + detail + ".";
      case 429: case 503: return "Too many buyers at once: press Buy again in a moment." + detail;
      default: return "Something went wrong (HTTP " + code + ")" + detail + ": press Buy again.";
    }
  }

  async function watchOrder(id, attempt) {
    // Until the reservation becomes an order (or 5 minutes pass): the consumers write it shortly.
    try {
      const response = await fetch("/api/orders/" + encodeURIComponent(id), {
        cache: "no-store", headers: { ...JSON_ACCEPT, authorization: "Bearer " + token() },
      });
      if (response.ok) {
        const answer = await response.json();
        showReservation(answer);
        if (answer.state !== "reserved") return;
      }
    } catch (_) { /* try again below */ }
    if (attempt < 150) setTimeout(() => watchOrder(id, attempt + 1), 2000);
  }

  for (const element of document.querySelectorAll("time[data-local]")) {
    const when = Date.parse(element.dateTime);
    if (!Number.isNaN(when)) element.textContent = new Date(when).toLocaleString(undefined, SHOWN_TIME);
  }
  const price = byId("price");
  try {
    const money = new Intl.NumberFormat(undefined, { style: "currency", currency: price.dataset.currency });
    price.textContent = money.format(Number(price.dataset.amount));
  } catch (_) { /* keep the server's rendering */ }
  buy.addEventListener("click", () => purchase(0));
  window.__flashsale_onStatus = onStatus;
  setInterval(tick, 250);
  if (window.__flashsale_status) onStatus(window.__flashsale_status);
  else { render(); schedulePoll(1000); } // /status.js normally answers first; polling covers its loss
})();
