/* The purchase history of one Starknet address, from GET /api/v1/orders, a page at a time. */
"use strict";

(function () {
  const V = window.VOLTA;
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 10;
  const ADDRESS_KEY = "volta.starknet_address";
  const badges = JSON.parse($("badges").textContent);
  const when = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "short" });

  const params = new URLSearchParams(location.search);
  const address = (params.get("starknet_address") || "").trim();
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const input = $("address");
  const message = $("address-msg");

  function pageUrl(at) {
    const query = new URLSearchParams({ starknet_address: address });
    if (at > 0) query.set("offset", String(at));
    return `/history?${query}`;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function purchaseItem(order) {
    const item = element("li", "purchase");
    item.dataset.orderId = order.order_id;
    const top = element("div", "purchase-top");
    top.append(element("span", "purchase-amount", `${V.formatVusd(order.vusd_amount)} VUSD`));
    top.append(element("span", `badge badge-${order.status}`, badges[order.status] || order.status));
    item.append(top);

    const meta = element("p", "purchase-meta");
    const created = new Date(order.created_at);
    const time = element("time", "", when.format(created));
    time.dateTime = order.created_at;
    meta.append(time, document.createTextNode(` · ${V.formatSats(order.amount_msat)} sats`));
    item.append(meta);

    if (order.status === "refunded" || order.status === "expired") {
      item.append(element("p", "purchase-meta", order.status === "refunded"
        ? "Refunded: the sats went back to the paying wallet."
        : "Not paid in time; no money moved."));
    }
    if (order.mint_tx_hash) {
      const tx = element("p", "purchase-tx");
      tx.append(element("span", "", "Transaction "), element("code", "hash", order.mint_tx_hash));
      item.append(tx);
    }
    const more = element("a", "more", "Details");
    more.href = `/checkout/${encodeURIComponent(order.order_id)}`;
    more.setAttribute("aria-label", `Details of ${V.formatVusd(order.vusd_amount)} VUSD, ${when.format(created)}`);
    item.append(more);
    return item;
  }

  function pagerLink(link, at, enabled) {
    if (enabled) {
      link.href = pageUrl(at);
      link.removeAttribute("aria-disabled");
      link.removeAttribute("tabindex");
    } else {
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
      link.setAttribute("tabindex", "-1");
    }
  }

  async function load() {
    const results = $("results");
    const summary = $("results-summary");
    const list = $("purchases");
    results.hidden = false;
    summary.textContent = "Loading your purchases…";
    const query = new URLSearchParams({ starknet_address: address, limit: String(PAGE_SIZE), offset: String(offset) });
    let reply;
    try {
      reply = await V.requestJSON(`/api/v1/orders?${query}`, {}, 20000);
    } catch (err) {
      summary.textContent = "We could not reach VOLTA. Check your connection and reload the page.";
      return;
    }
    if (!reply.ok || !reply.body) {
      const body = reply.body || {};
      summary.textContent = [body.message || `We could not load the purchases (HTTP ${reply.status}).`, body.hint]
        .filter(Boolean).join(" ");
      return;
    }
    const { orders, total, next_offset: nextOffset } = reply.body;
    list.replaceChildren(...orders.map(purchaseItem));
    if (total === 0) {
      summary.replaceChildren(document.createTextNode("No purchases for this address yet. "));
      const buy = element("a", "", "Buy VUSD");
      buy.href = `/?address=${encodeURIComponent(address)}`;
      summary.append(buy);
    } else if (orders.length === 0) {
      summary.replaceChildren(document.createTextNode(`This page is past the last purchase (${total} in all). `));
      const first = element("a", "", "Go to the newest");
      first.href = pageUrl(0);
      summary.append(first);
    } else {
      const count = `${total} purchase${total === 1 ? "" : "s"}, newest first`;
      summary.textContent = orders.length === total ? `${count}.` : `${count}; showing ${offset + 1}–${offset + orders.length}.`;
    }
    const pager = $("pager");
    const hasNewer = offset > 0;
    const hasOlder = nextOffset !== null && nextOffset !== undefined;
    pagerLink($("newer"), Math.max(0, offset - PAGE_SIZE), hasNewer);
    pagerLink($("older"), nextOffset, hasOlder);
    pager.hidden = !(hasNewer || hasOlder);
  }

  $("history-form").addEventListener("submit", (event) => {
    const result = V.checkAddress(input.value);
    if (!result.ok) {
      event.preventDefault();
      V.setMessage(message, result.message, "error");
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  input.addEventListener("input", () => {
    const result = V.checkAddress(input.value);
    V.setMessage(message, result.ok || result.empty ? "" : result.message, "error");
    input.setAttribute("aria-invalid", result.ok || result.empty ? "false" : "true");
  });

  if (!address) {
    try {
      input.value = localStorage.getItem(ADDRESS_KEY) || "";
    } catch (err) {
      /* no storage */
    }
    return;
  }
  const checked = V.checkAddress(address);
  if (!checked.ok) {
    V.setMessage(message, checked.message, "error");
    input.setAttribute("aria-invalid", "true");
    return;
  }
  try {
    localStorage.setItem(ADDRESS_KEY, address);
  } catch (err) {
    /* no storage */
  }
  load();
})();
