/* The purchase history of one Starknet address.

   Every purchase (GET /api/v1/orders) needs proof of the address: the Starknet wallet in the browser (the
   injected `window.starknet` of get-starknet) signs the service's SNIP-12 challenge, and the session it buys is
   kept in this tab (sessionStorage) until it expires. Without a wallet, or before signing, the page shows the
   purchases made in this browser: buy.js remembers their order ids in localStorage. */
"use strict";

(function () {
  const V = window.VOLTA;
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 10;
  const ADDRESS_KEY = "volta.starknet_address";
  const ORDERS_KEY = "volta.orders";
  const READ_AT_ONCE = 4;
  const READ_RETRIES = 3;
  const SESSION_KEY = "volta.history.session";
  const badges = JSON.parse($("badges").textContent);
  const when = new Intl.DateTimeFormat(V.lang, { dateStyle: "medium", timeStyle: "short" });

  const params = new URLSearchParams(location.search);
  const address = (params.get("starknet_address") || "").trim();
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const input = $("address");
  const message = $("address-msg");
  const proofMsg = $("proof-msg");
  const signButton = $("sign-button");

  /** 0x + 64 lower-case hex digits, as the service writes addresses; "" if it is no address. */
  function normalized(text) {
    try {
      return "0x" + BigInt(String(text).trim()).toString(16).padStart(64, "0");
    } catch (err) {
      return "";
    }
  }

  function pageUrl(at, forAddress) {
    const query = new URLSearchParams({ starknet_address: forAddress || address });
    if (at > 0) query.set("offset", String(at));
    return `/history?${query}`;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // -- this browser's storage -------------------------------------------------------------------------

  function readJSON(storage, key) {
    try {
      return JSON.parse(storage.getItem(key) || "null");
    } catch (err) {
      return null; // no storage (private mode), or not ours
    }
  }

  function rememberedOrderIds() {
    const remembered = readJSON(localStorage, ORDERS_KEY);
    if (!Array.isArray(remembered)) return [];
    return remembered.filter((entry) => entry && normalized(entry.starknet_address) === normalized(address))
      .map((entry) => String(entry.order_id));
  }

  function savedSession() {
    const saved = readJSON(sessionStorage, SESSION_KEY);
    if (!saved || saved.starknet_address !== normalized(address) || Date.parse(saved.expires_at) <= Date.now()) {
      return "";
    }
    return saved.session;
  }

  function saveSession(session) {
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    } catch (err) {
      /* no storage: this page view still has the session */
    }
  }

  function forgetSession() {
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch (err) {
      /* no storage */
    }
  }

  // -- the list -----------------------------------------------------------------------------------------

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
    meta.append(time, document.createTextNode(" · " + V.t("{sats} sats", { sats: V.formatSats(order.amount_msat) })));
    item.append(meta);

    if (order.status === "refunded" || order.status === "expired") {
      item.append(element("p", "purchase-meta", order.status === "refunded"
        ? V.t("Refunded: the sats went back to the paying wallet.")
        : V.t("Not paid in time; no money moved.")));
    }
    if (order.mint_tx_hash) {
      const tx = element("p", "purchase-tx");
      tx.append(element("span", "", V.t("Transaction") + " "), element("code", "hash", order.mint_tx_hash));
      item.append(tx);
    }
    const more = element("a", "more", V.t("Details"));
    more.href = `/checkout/${encodeURIComponent(order.order_id)}`;
    more.setAttribute("aria-label", V.t("Details of {vusd} VUSD, {when}",
      { vusd: V.formatVusd(order.vusd_amount), when: when.format(created) }));
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

  function showResults(source) {
    $("results").hidden = false;
    $("results").dataset.source = source;
    $("results-title").textContent = source === "proven" ? V.t("Purchases") : V.t("Made in this browser");
  }

  /** Every purchase of the address, a page at a time; false if the session is refused. */
  async function loadProven(session) {
    const summary = $("results-summary");
    const list = $("purchases");
    showResults("proven");
    summary.textContent = V.t("Loading your purchases…");
    const query = new URLSearchParams({ starknet_address: address, limit: String(PAGE_SIZE), offset: String(offset) });
    let reply;
    try {
      reply = await V.requestJSON(`/api/v1/orders?${query}`,
        { headers: { Accept: "application/json", Authorization: `Bearer ${session}` } }, 20000);
    } catch (err) {
      summary.textContent = V.t("We could not reach VOLTA. Check your connection and reload the page.");
      return true;
    }
    if (reply.status === 401 || reply.status === 403) {
      forgetSession();
      return false;
    }
    if (!reply.ok || !reply.body) {
      const body = reply.body || {};
      const fallback = V.t("We could not load the purchases (HTTP {status}).", { status: reply.status });
      summary.textContent = [body.message || fallback, body.hint]
        .filter(Boolean).join(" ");
      return true;
    }
    $("proof").hidden = true;
    const { orders, total, next_offset: nextOffset } = reply.body;
    list.replaceChildren(...orders.map(purchaseItem));
    if (total === 0) {
      summary.replaceChildren(document.createTextNode(V.t("No purchases for this address yet.") + " "));
      const buy = element("a", "", V.t("Buy VUSD"));
      buy.href = `/?address=${encodeURIComponent(address)}`;
      summary.append(buy);
    } else if (orders.length === 0) {
      summary.replaceChildren(document.createTextNode(
        V.t("This page is past the last purchase ({total} in all).", { total: V.formatCount(total) }) + " "));
      const first = element("a", "", V.t("Go to the newest"));
      first.href = pageUrl(0);
      summary.append(first);
    } else {
      summary.textContent = orders.length === total
        ? V.tn("{n} purchase, newest first.", "{n} purchases, newest first.", total)
        : V.tn("{n} purchase, newest first; showing {first}–{last}.",
          "{n} purchases, newest first; showing {first}–{last}.", total,
          { first: V.formatCount(offset + 1), last: V.formatCount(offset + orders.length) });
    }
    const pager = $("pager");
    const hasNewer = offset > 0;
    const hasOlder = nextOffset !== null && nextOffset !== undefined;
    pagerLink($("newer"), Math.max(0, offset - PAGE_SIZE), hasNewer);
    pagerLink($("older"), nextOffset, hasOlder);
    pager.hidden = !(hasNewer || hasOlder);
    return true;
  }

  /** Each order, READ_AT_ONCE at a time (a browser may remember 50): reads of an order are limited per client
      (VOLTA_RATE_LIMIT_READS_PER_IP), so one refused with 429 is read again after its Retry-After. */
  async function readOrders(ids) {
    const replies = new Array(ids.length).fill(null);
    let next = 0;
    async function reader() {
      while (next < ids.length) {
        const index = next++;
        replies[index] = await readOrder(ids[index]);
      }
    }
    await Promise.all(Array.from({ length: Math.min(READ_AT_ONCE, ids.length) }, reader));
    return replies;
  }

  async function readOrder(id) {
    for (let attempt = 0; ; attempt++) {
      const reply = await V.requestJSON(`/api/v1/orders/${encodeURIComponent(id)}`, {}, 20000).catch(() => null);
      if (!reply || reply.status !== 429 || attempt >= READ_RETRIES) return reply;
      const waitS = Math.min(Math.max(reply.retryAfterS, 1), 10);
      await new Promise((resolve) => setTimeout(resolve, waitS * 1000));
    }
  }

  /** The purchases this browser made for the address: each order id is its own key to the order. */
  async function loadFromThisBrowser() {
    const summary = $("results-summary");
    showResults("browser");
    $("pager").hidden = true;
    const ids = rememberedOrderIds();
    if (ids.length === 0) {
      summary.textContent = V.t("No purchases for this address were made in this browser.");
      $("purchases").replaceChildren();
      return;
    }
    summary.textContent = V.t("Loading the purchases made in this browser…");
    const replies = await readOrders(ids);
    const orders = replies.filter((reply) => reply && reply.ok && reply.body).map((reply) => reply.body)
      .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    $("purchases").replaceChildren(...orders.map(purchaseItem));
    summary.textContent = orders.length
      ? V.tn("{n} purchase made in this browser, newest first.", "{n} purchases made in this browser, newest first.",
        orders.length)
      : V.t("We could not load the purchases made in this browser. Reload the page to try again.");
  }

  // -- the wallet ---------------------------------------------------------------------------------------

  // The injected wallet and connecting to it: common.js (V.starknetWallet, V.connectStarknet).

  async function signTypedData(provider, typedData) {
    if (provider.account && typeof provider.account.signMessage === "function") {
      return provider.account.signMessage(typedData);
    }
    return provider.request({ type: "wallet_signTypedData", params: typedData });
  }

  /** A signature as felts in text: wallets give an array of strings, numbers or bigints, or {r, s}. */
  function signatureFelts(signature) {
    const felts = Array.isArray(signature) ? signature : [signature.r, signature.s];
    return felts.map((felt) => (typeof felt === "bigint" ? "0x" + felt.toString(16) : String(felt)));
  }

  function declined(err) {
    return /reject|declin|abort|cancel|denied|refused/i.test(String((err && err.message) || err));
  }

  function setSigning(on) {
    signButton.disabled = on;
    signButton.setAttribute("aria-busy", on ? "true" : "false");
    signButton.textContent = on ? V.t("Waiting for your wallet…") : V.t("Sign in with your Starknet wallet");
  }

  function problem(text, linkText, href) {
    V.setMessage(proofMsg, text, "error");
    if (linkText) {
      const link = element("a", "", linkText);
      link.href = href;
      proofMsg.append(document.createTextNode(" "), link);
    }
  }

  async function post(url, body) {
    return V.requestJSON(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    }, 30000);
  }

  async function prove() {
    const provider = V.starknetWallet();
    if (!provider) return;
    V.setMessage(proofMsg, "");
    setSigning(true);
    try {
      let account;
      try {
        account = await V.connectStarknet(provider);
      } catch (err) {
        problem(declined(err) ? V.t("You did not connect your wallet, so nothing was shared.")
          : V.t("Your wallet did not connect."));
        return;
      }
      if (normalized(account) !== normalized(address)) {
        problem(V.t("Your wallet's account is {account}, not this address. Switch accounts in the wallet,",
          { account: account || V.t("unknown") }), V.t("or see that account's purchases"), pageUrl(0, account));
        return;
      }
      const challenge = await post("/api/v1/history/challenge", { starknet_address: address });
      if (!challenge.ok || !challenge.body) {
        const body = challenge.body || {};
        const fallback = V.t("We could not start the sign-in (HTTP {status}).", { status: challenge.status });
        problem([body.message || fallback, body.hint]
          .filter(Boolean).join(" "));
        return;
      }
      let signature;
      try {
        signature = await signTypedData(provider, challenge.body.typed_data);
      } catch (err) {
        problem(declined(err)
          ? V.t("You declined to sign in your wallet. Nothing was shared; sign when you are ready.")
          : V.t("Your wallet could not sign the message. Try again, or update the wallet."));
        return;
      }
      const session = await post("/api/v1/history/session",
        { challenge: challenge.body.challenge, signature: signatureFelts(signature) });
      if (!session.ok || !session.body) {
        const body = session.body || {};
        const fallback = V.t("We could not check your signature (HTTP {status}).", { status: session.status });
        problem([body.message || fallback, body.hint]
          .filter(Boolean).join(" "));
        return;
      }
      saveSession(session.body);
      V.setMessage(proofMsg, V.t("Signed in. Loading every purchase…"), "ok");
      if (!(await loadProven(session.body.session))) {
        problem(V.t("The service did not accept the new session. Try signing again."));
      }
    } catch (err) {
      problem(V.t("We could not reach VOLTA. Check your connection and try again."));
    } finally {
      setSigning(false);
    }
  }

  function offerProof(expired) {
    $("proof").hidden = false;
    const provider = V.starknetWallet();
    $("proof-text").hidden = !provider;
    $("no-wallet").hidden = Boolean(provider);
    signButton.hidden = !provider;
    if (expired) V.setMessage(proofMsg, V.t("Your sign-in has expired. Sign again to see every purchase."), "warn");
  }

  // -- the page -----------------------------------------------------------------------------------------

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
  signButton.addEventListener("click", prove);

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

  (async () => {
    const session = savedSession();
    if (session && (await loadProven(session))) return;
    offerProof(Boolean(session));
    await loadFromThisBrowser();
  })();
})();
