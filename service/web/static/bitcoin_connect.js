/* The checkout's "Connect wallet": Bitcoin Connect (vendored, window.bitcoinConnect) connects the buyer's
   wallet over Nostr Wallet Connect; once connected, one tap pays the invoice through it (WebLN sendPayment).
   The order's status then moves on by itself (checkout.js follows it); this script only pays. */
"use strict";

const STORED_CONNECTION = "bc:config"; // Bitcoin Connect's localStorage key

function forgetConnection() {
  try {
    window.localStorage.removeItem(STORED_CONNECTION);
  } catch (_) {
    // storage disabled: nothing was kept
  }
}

function startBitcoinConnect() {
  const V = window.VOLTA; // common.js: a deferred script after this one, so this runs on DOMContentLoaded
  const bc = window.bitcoinConnect;
  const $ = (id) => document.getElementById(id);
  const box = $("bc-pay");
  const orderData = $("order-data");
  if (!box || !orderData || !bc || typeof bc.init !== "function") return; // the bundle did not load: QR and copy remain
  const order = JSON.parse(orderData.textContent);
  if (order.status !== "awaiting_payment") return;

  const connectButton = $("bc-connect");
  const payButton = $("bc-pay-button");
  const disconnectButton = $("bc-disconnect");
  const status = $("bc-status");
  const error = $("bc-error");
  let provider = null;
  let paying = false;

  // By default Bitcoin Connect keeps the connection string (the wallet's spending secret) in localStorage and
  // reconnects from it on every later page: on a shared browser the next visitor's tap would pay from this
  // wallet. The connection lasts for this page only (persistConnection: false); one an earlier version of this
  // page kept is forgotten, so later pages start unconnected.
  forgetConnection();
  bc.init({
    persistConnection: false,
    appName: "VOLTA",
    // Nostr Wallet Connect only: LNbits would need connect-src to its host, Lightning Node Connect is not
    // bundled, and a WebLN browser extension already has checkout.js's own "Pay with browser wallet".
    filters: ["nwc"],
    showBalance: true,
    // No connecting from a "#nwc=…" link: a wallet is connected only by the person, in the modal.
    autoConnect: false,
  });

  function payLabel() {
    const sats = V.formatSats(order.amount_msat);
    return V.t("Pay {sats} sats with your connected wallet", { sats });
  }

  function showConnected(connected) {
    connectButton.hidden = connected;
    payButton.hidden = !connected;
    disconnectButton.hidden = !connected;
    if (connected) payButton.textContent = payLabel();
  }

  function setBusy(on) {
    payButton.disabled = on;
    payButton.setAttribute("aria-busy", on ? "true" : "false");
    disconnectButton.disabled = on;
    payButton.textContent = on ? V.t("Waiting for your wallet…") : payLabel();
  }

  function failureText(cause) {
    const text = String((cause && (cause.message || cause)) || "").trim();
    let what;
    if (/reject|denied|declin|cancel|refus/i.test(text)) what = V.t("You declined the payment in your wallet.");
    else if (/insufficient|balance|funds|liquidity|budget|quota/i.test(text)) {
      what = V.t("Your wallet does not have enough funds for this payment.");
    } else if (/route|path|unreachable/i.test(text)) what = V.t("Your wallet could not find a route to pay this invoice.");
    else if (/timeout|publish|relay|connect/i.test(text)) what = V.t("Your wallet did not answer in time.");
    else what = V.t("Your connected wallet could not pay ({reason}).", { reason: text || "?" });
    // Concatenated, not a template literal: the extractor that builds the catalogue does not look inside one.
    return what + " " + V.t("If it was not paid, scan the QR code or open the invoice in another wallet instead.");
  }

  async function pay() {
    if (paying || !provider) return;
    paying = true;
    error.hidden = true;
    setBusy(true);
    V.setMessage(status, "");
    try {
      await provider.sendPayment(order.bolt11);
      // Paid: VOLTA sees the payment held and the order's status (checkout.js) takes over from here.
      V.setMessage(status, V.t("Paid from your wallet. VOLTA is taking it from here…"), "ok");
      payButton.hidden = true;
      disconnectButton.hidden = true;
    } catch (cause) {
      error.textContent = failureText(cause);
      error.hidden = false;
      setBusy(false);
    } finally {
      paying = false;
      if (!payButton.hidden) setBusy(false);
    }
  }

  bc.onConnected((connected) => {
    provider = connected;
    showConnected(true);
    error.hidden = true;
    V.setMessage(status, V.t("Wallet connected."), "ok");
    bc.closeModal(); // back to the page: the next tap pays
    payButton.focus();
  });
  bc.onDisconnected(() => {
    provider = null;
    showConnected(false);
    V.setMessage(status, "");
  });

  connectButton.addEventListener("click", () => bc.launchModal());
  payButton.addEventListener("click", pay);
  disconnectButton.addEventListener("click", () => bc.disconnect());
  box.hidden = false;
}

document.addEventListener("DOMContentLoaded", startBitcoinConnect);
