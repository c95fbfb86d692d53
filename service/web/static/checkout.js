/* The checkout page: the invoice (QR, copy, open in wallet, WebLN), a countdown, and the order's live status
   from its Server-Sent Events stream, with polling as the fallback. The page never reloads itself. Once done,
   the mint transaction in the explorer and "add VUSD" to the Starknet wallet. */
"use strict";

(function () {
  const V = window.VOLTA;
  const $ = (id) => document.getElementById(id);
  const copy = JSON.parse($("page-copy").textContent);
  const root = $("checkout");
  const RANK = { awaiting_payment: 0, payment_held: 1, minting: 2, minted: 3, completed: 4,
    expired: 4, refunded: 4, failed: 4 };
  const POLL_MS = 3000;
  const QUIET_MS = 15000;

  let order = JSON.parse($("order-data").textContent);
  const statusUrl = `/api/v1/orders/${encodeURIComponent(order.order_id)}`;
  const clockOffsetMs = (Date.parse(root.dataset.serverNow) || Date.now()) - Date.now();
  let source = null;
  let pollTimer = null;
  let lastNewsAt = Date.now();
  let warnedLastMinute = false;
  let paying = false;

  const isFinal = (status) => copy.final.includes(status);

  function fill(text) {
    return String(text || "")
      .replaceAll("{vusd}", V.formatVusd(order.vusd_amount))
      .replaceAll("{slippage}", V.formatPercentNumber(order.max_slippage_bps));
  }

  // -- showing the order -----------------------------------------------------------------------------

  function render(next) {
    if (!next || !next.status) return;
    if ((RANK[next.status] ?? 4) < (RANK[order.status] ?? 4)) return; // a late poll never moves us back
    const changed = next.status !== order.status;
    order = next;
    const status = order.status;
    const words = copy.statuses[status] || copy.statuses.failed;
    const final = isFinal(status);
    root.dataset.status = status;
    root.classList.toggle("is-paid", status !== "awaiting_payment");

    const card = $("status-card");
    card.className = `card status-card status-${status}`
      + (final ? " status-ended" : status !== "awaiting_payment" ? " status-working" : "");
    const step = copy.step_of_status[status] ?? -1;
    $("steps").hidden = final && status !== "completed";
    for (const item of document.querySelectorAll("#steps .step")) {
      const index = Number(item.dataset.step);
      const done = index < step || status === "completed";
      const current = index === step && status !== "completed";
      item.classList.toggle("is-done", done);
      item.classList.toggle("is-current", current);
      if (current) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }

    const headline = fill(words.headline);
    const detail = fill(words.detail);
    let reason = "";
    if (status === "refunded") {
      reason = fill(copy.refund_reasons[order.refund_reason || ""] || copy.refund_reasons[""]);
    }
    $("status-headline").textContent = headline;
    $("status-detail").textContent = detail;
    $("status-reason").textContent = reason;
    $("status-reason").hidden = !reason;

    $("result-done").hidden = status !== "completed";
    if (order.mint_tx_hash) $("tx-hash").textContent = order.mint_tx_hash;
    if (status === "completed") showTransactionLinks();
    if (status === "completed" && $("new-balance").hidden) showNewBalance();
    $("restart").hidden = !(status === "expired" || status === "refunded");
    if ($("return")) $("return").hidden = !final; // back to the merchant (a host the operator allows) once final
    const payCard = $("pay-card");
    const focusWasInPayCard = payCard.contains(document.activeElement);
    payCard.hidden = status !== "awaiting_payment";
    if (payCard.hidden && focusWasInPayCard) $("status-headline").focus(); // focus never drops to the page
    document.title = `${words.badge} · ${V.formatVusd(order.vusd_amount)} VUSD · VOLTA`;

    if (changed) announce([headline, detail, reason].filter(Boolean).join(" "));
    if (final) stopFollowing();
  }

  // -- the done page: the explorer and the Starknet wallet -------------------------------------------

  const done = $("result-done");

  /** The explorer's page of the mint (the operator's `explorer_tx_url`), and "add VUSD" with a wallet. */
  function showTransactionLinks() {
    const link = $("tx-link");
    const template = done.dataset.explorerTxUrl;
    if (link && template && /^0x[0-9a-fA-F]+$/.test(order.mint_tx_hash || "")) {
      link.href = template.replaceAll("{tx_hash}", order.mint_tx_hash);
      link.hidden = false;
    }
    $("watch-vusd").hidden = !(V.starknetWallet() && done.dataset.vusdAddress);
  }

  function setWatchBusy(on) {
    const button = $("watch-vusd");
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
    button.textContent = on ? V.t("Waiting for your wallet…") : V.t("Add VUSD to my wallet");
  }

  /** wallet_watchAsset of the Starknet wallet API: VUSD's contract, symbol and decimals. */
  async function watchVusd() {
    const message = $("watch-msg");
    const provider = V.starknetWallet();
    if (!provider) {
      $("watch-vusd").hidden = true;
      V.setMessage(message, V.t("Your Starknet wallet is not available on this page any more."), "error");
      return;
    }
    if (typeof provider.request !== "function") {
      V.setMessage(message, V.t("Your wallet cannot add tokens from a page. Add VUSD in the wallet with the contract "
        + "address {address}.", { address: done.dataset.vusdAddress }), "warn");
      return;
    }
    V.setMessage(message, "");
    setWatchBusy(true);
    let stage = "connect";
    try {
      await V.connectStarknet(provider);
      stage = "watch";
      const added = await provider.request({
        type: "wallet_watchAsset",
        params: { type: "ERC20", options: { address: done.dataset.vusdAddress, symbol: done.dataset.vusdSymbol,
          decimals: Number(done.dataset.vusdDecimals), name: done.dataset.vusdSymbol } },
      });
      if (added === false) throw new Error("declined");
      V.setMessage(message, V.t("VUSD is in your wallet's token list."), "ok");
    } catch (err) {
      let text;
      if (V.walletDeclined(err)) {
        text = stage === "connect" ? V.t("You did not connect your wallet, so VUSD was not added.")
          : V.t("You declined adding VUSD in your wallet. Your VUSD is at your address either way.");
      } else {
        text = V.t("Your wallet could not add VUSD. Your VUSD is at your address either way.");
      }
      V.setMessage(message, text, "error");
    } finally {
      setWatchBusy(false);
    }
  }

  async function showNewBalance() {
    try {
      const response = await fetch(`/api/v1/balance?starknet_address=${encodeURIComponent(order.starknet_address)}`);
      if (!response.ok) return; // the sentence above already says where the VUSD is
      const body = await response.json();
      $("new-balance").textContent = V.t("Your VUSD balance is now {vusd} VUSD.", { vusd: V.formatVusd(body.vusd) });
      $("new-balance").hidden = false;
    } catch (error) {
      // Balance is a courtesy; the order itself is done either way.
    }
  }

  function announce(text) {
    const region = $("announcer");
    region.textContent = "";
    // A fresh text node after a tick, so screen readers announce it even when it repeats.
    setTimeout(() => { region.textContent = text; }, 50);
  }

  // -- countdown -------------------------------------------------------------------------------------

  function tick() {
    if (order.status !== "awaiting_payment") return;
    const element = $("countdown");
    const left = Date.parse(order.expires_at) - (Date.now() + clockOffsetMs);
    if (left <= 0) {
      element.textContent = V.t("This quote has run out; checking with VOLTA…");
      element.classList.add("is-warn");
      pollOnce();
      return;
    }
    const seconds = Math.ceil(left / 1000);
    const minutes = Math.floor(seconds / 60);
    element.textContent = V.t("Expires in {minutes}:{seconds}",
      { minutes, seconds: String(seconds % 60).padStart(2, "0") });
    element.classList.toggle("is-warn", seconds <= 60);
    if (seconds <= 60 && seconds > 5 && !warnedLastMinute) {
      warnedLastMinute = true;
      announce(V.t("Less than a minute left to pay this invoice."));
    }
  }

  // -- following the order ---------------------------------------------------------------------------

  function handle(next) {
    lastNewsAt = Date.now();
    render(next);
  }

  async function pollOnce() {
    try {
      const reply = await V.requestJSON(statusUrl, {}, 15000);
      if (reply.ok && reply.body) handle(reply.body);
    } catch (err) {
      /* offline for a moment: the next poll or the stream will catch up */
    }
  }

  function startPolling() {
    if (pollTimer || isFinal(order.status)) return;
    pollTimer = setInterval(pollOnce, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function startStream() {
    if (isFinal(order.status)) return;
    if (!("EventSource" in window)) {
      startPolling();
      return;
    }
    source = new EventSource(`${statusUrl}/events`);
    source.addEventListener("order", (event) => {
      stopPolling();
      try {
        handle(JSON.parse(event.data));
      } catch (err) {
        pollOnce();
      }
    });
    source.addEventListener("error", () => {
      if (isFinal(order.status)) {
        stopFollowing();
        return;
      }
      // EventSource reconnects by itself; poll meanwhile, and start over if it gave up for good.
      pollOnce();
      startPolling();
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(startStream, 5000);
      }
    });
  }

  function stopFollowing() {
    stopPolling();
    if (source) source.close();
    source = null;
  }

  // -- paying ----------------------------------------------------------------------------------------

  async function copyFrom(button, text, done, failed) {
    const ok = text && await V.copyText(text);
    const message = $("copy-msg");
    if (button.id === "copy-button") V.setMessage(message, ok ? done : failed, ok ? "ok" : "error");
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = ok ? V.t("Copied ✓") : label;
    setTimeout(() => { button.textContent = label; }, 2500);
    if (!ok && button.id !== "copy-button") announce(failed);
  }

  function weblnMessage(stage, error) {
    const text = String((error && (error.message || error)) || "").trim();
    let what;
    if (stage === "missing") what = V.t("Your browser wallet is not available on this page any more.");
    else if (/reject|denied|declin|cancel|refus|user/i.test(text)) {
      what = stage === "enable" ? V.t("You did not allow your browser wallet to connect.")
        : V.t("You declined the payment in your wallet.");
    } else if (/route|path|unreachable/i.test(text)) {
      what = V.t("Your wallet could not find a route to pay this invoice.");
    } else if (/insufficient|balance|funds|liquidity/i.test(text)) {
      what = V.t("Your wallet does not have enough funds for this payment.");
    } else if (stage === "enable") {
      what = text ? V.t("Your browser wallet did not connect ({error}).", { error: text })
        : V.t("Your browser wallet did not connect.");
    } else {
      what = text ? V.t("Your browser wallet could not pay ({error}).", { error: text })
        : V.t("Your browser wallet could not pay.");
    }
    return what + " " + V.t("Nothing was paid. Scan the QR code or open the invoice in another wallet instead.");
  }

  function setWeblnBusy(on, label) {
    const button = $("webln-button");
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
    if (on) {
      const spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      const waiting = document.createElement("span");
      waiting.textContent = V.t("Waiting for your wallet…");
      button.replaceChildren(spinner, waiting);
    } else {
      button.textContent = label || V.t("Pay with browser wallet");
    }
  }

  async function payWithWebln() {
    if (paying) return;
    const message = $("webln-msg");
    message.hidden = true;
    const provider = window.webln;
    if (!provider || typeof provider.sendPayment !== "function") {
      showWeblnFailure("missing", null);
      $("webln-button").hidden = true;
      return;
    }
    paying = true;
    setWeblnBusy(true);
    let stage = "enable";
    try {
      if (typeof provider.enable === "function") await provider.enable();
      stage = "pay";
      await provider.sendPayment(order.bolt11);
      paying = false;
      setWeblnBusy(false);
      pollOnce();
    } catch (error) {
      paying = false;
      await pollOnce();
      if (order.status !== "awaiting_payment") {
        setWeblnBusy(false); // the payment got through after all, or the order ended: the status says it
        return;
      }
      showWeblnFailure(stage, error);
    }
  }

  function showWeblnFailure(stage, error) {
    const message = $("webln-msg");
    message.textContent = weblnMessage(stage, error);
    message.hidden = false;
    setWeblnBusy(false, V.t("Try the browser wallet again"));
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    $("qr-link").scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
  }

  function offerWebln() {
    if (!window.webln || order.status !== "awaiting_payment") return;
    $("webln-button").hidden = false;
    const open = $("open-wallet");
    open.classList.remove("btn-primary");
    open.classList.add("btn-secondary");
  }

  // -- wiring ----------------------------------------------------------------------------------------

  $("copy-button").addEventListener("click", (event) => copyFrom(event.currentTarget, event.currentTarget.dataset.bolt11,
    V.t("Invoice copied. Paste it in your Lightning wallet."),
    V.t("We could not copy it. Open “{summary}” below and copy it from there.",
      { summary: document.querySelector(".invoice-text summary").textContent.trim() })));
  $("copy-tx").addEventListener("click", (event) => copyFrom(event.currentTarget, $("tx-hash").textContent.trim(),
    V.t("Transaction hash copied."), V.t("We could not copy the transaction hash; select it and copy it by hand.")));
  $("webln-button").addEventListener("click", payWithWebln);
  $("watch-vusd").addEventListener("click", watchVusd);
  setTimeout(() => { if (order.status === "completed") showTransactionLinks(); }, 600); // late wallets
  window.addEventListener("webln:ready", offerWebln);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) pollOnce();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !isFinal(order.status)) pollOnce();
  });

  offerWebln();
  setTimeout(offerWebln, 600); // some providers inject themselves a moment after the page loads
  render(order);
  tick();
  setInterval(tick, 1000);
  setInterval(() => {
    if (!isFinal(order.status) && Date.now() - lastNewsAt > QUIET_MS) pollOnce();
  }, QUIET_MS);
  startStream();
})();
