/* The buy page: amount in VUSD with its price in sats (live rate), Starknet address check (typed, or filled
   from the injected Starknet wallet), price protection, and the order itself (POST /api/v1/orders, then on to
   the checkout page). */
"use strict";

(function () {
  const V = window.VOLTA;
  const $ = (id) => document.getElementById(id);
  const RATE_MAX_AGE_MS = 20000;
  const ADDRESS_KEY = "volta.starknet_address";
  const ORDERS_KEY = "volta.orders"; // read by history.js
  const MAX_REMEMBERED_ORDERS = 50;

  const form = $("buy-form");
  const amount = $("amount");
  const amountMsg = $("amount-msg");
  const address = $("address");
  const addressMsg = $("address-msg");
  const slider = $("slippage");
  const button = $("buy-button");
  const errorBox = $("form-error");

  let rate = null;
  let rateFetchedAt = 0;
  let rateRequest = null;
  let busy = false;
  let submitted = false;
  // One Idempotency-Key per order body: a retry after a lost answer gets the same order, not a second one.
  let attempt = { body: "", key: "" };

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // -- amounts ---------------------------------------------------------------------------------------

  function decimalParts(text) {
    const match = /^(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
    if (!match) return null;
    const whole = match[1] || "0";
    const fraction = match[2] || "";
    return { digits: BigInt(whole + fraction || "0"), scale: fraction.length };
  }

  function toCents(text) {
    const parts = decimalParts(text);
    if (!parts) return null;
    const scale = BigInt(parts.scale);
    return parts.scale <= 2 ? parts.digits * 10n ** (2n - scale) : parts.digits / 10n ** (scale - 2n);
  }

  function centsText(cents) {
    return `${cents / 100n}.${String(cents % 100n).padStart(2, "0")}`;
  }

  /** What the person typed, as cents, or why it is not an amount we can sell. */
  function parseAmount(raw) {
    let text = V.plainNumber(String(raw || "").replace(/\s/g, "")); // "1.000,50" in German, "1,000.50" in English
    if (/^\d*,\d{1,2}$/.test(text)) text = text.replace(",", "."); // a decimal comma, whatever the language
    if (!text) return { ok: false, empty: true, message: V.t("Enter how much VUSD you want.") };
    if (!/^\d*\.?\d*$/.test(text) || text === ".") {
      return { ok: false, message: V.t("Use digits only, like 25 or {example}.", { example: V.formatVusd("25.50") }) };
    }
    const fraction = text.split(".")[1] || "";
    if (fraction.length > 2) return { ok: false, message: V.t("VUSD is sold in whole cents: use at most 2 decimals.") };
    const cents = toCents(text);
    if (cents === 0n) return { ok: false, message: V.t("Enter an amount above zero.") };
    if (rate) {
      const low = toCents(rate.min_order_vusd);
      const high = toCents(rate.max_order_vusd);
      if (low !== null && cents < low) {
        const vusd = V.formatVusd(rate.min_order_vusd);
        return { ok: false, cents, message: V.t("The smallest order is {vusd} VUSD.", { vusd }) };
      }
      if (high !== null && cents > high) {
        const vusd = V.formatVusd(rate.max_order_vusd);
        return { ok: false, cents, message: V.t("The largest order is {vusd} VUSD.", { vusd }) };
      }
    }
    return { ok: true, cents, text: centsText(cents) };
  }

  /** sats = vusd / (btc_usd * (1 - spread)) * 1e8, rounded up, in exact integer arithmetic. */
  function satsFor(cents) {
    const price = decimalParts(rate.btc_usd);
    if (!price || price.digits === 0n) return null;
    const numerator = cents * 10000n * 10n ** 8n * 10n ** BigInt(price.scale);
    const denominator = 100n * price.digits * BigInt(10000 - Number(rate.spread_bps));
    if (denominator <= 0n) return null;
    return (numerator + denominator - 1n) / denominator;
  }

  // -- the live estimate -----------------------------------------------------------------------------

  function showAmount(force) {
    const parsed = parseAmount(amount.value);
    const sats = $("sats");
    if (!parsed.ok && (parsed.empty || parsed.cents === undefined)) {
      sats.textContent = "–";
    } else if (!rate) {
      sats.textContent = "…";
    } else {
      const value = satsFor(parsed.cents);
      sats.textContent = value === null ? "–" : V.t("{sats} sats", { sats: V.formatSats(value * 1000n) });
    }
    const showError = !parsed.ok && (force || submitted || !parsed.empty);
    V.setMessage(amountMsg, showError ? parsed.message : "", "error");
    amount.setAttribute("aria-invalid", showError ? "true" : "false");
    for (const chip of document.querySelectorAll(".chip")) {
      chip.setAttribute("aria-pressed", parsed.ok && parsed.cents === toCents(chip.dataset.amount) ? "true" : "false");
    }
    return parsed;
  }

  function showRate() {
    const line = $("rate-line");
    if (!rate) return;
    line.textContent = V.t("1 BTC = {rate} USD, our fee {fee}. Rate checked at {time}.", {
      rate: V.formatVusd(rate.btc_usd),
      fee: V.formatPercent(rate.spread_bps),
      time: V.formatTime(new Date(rateFetchedAt)),
    });
    line.classList.toggle("is-warn", Boolean(rate.stale));
    if (rate.stale) line.textContent += " " + V.t("The price feed is late; buying may fail until it updates.");
    $("min-vusd").textContent = V.formatVusd(rate.min_order_vusd);
    $("max-vusd").textContent = V.formatVusd(rate.max_order_vusd);
    const minutes = Math.round(Number(rate.quote_lifetime_s) / 60);
    $("lifetime-line").textContent = minutes >= 1
      ? V.tn("You will have {n} minute to pay the invoice.", "You will have {n} minutes to pay the invoice.", minutes)
      : V.tn("You will have {n} second to pay the invoice.", "You will have {n} seconds to pay the invoice.",
        Number(rate.quote_lifetime_s));
  }

  async function refreshRate() {
    if (rateRequest) return rateRequest;
    rateRequest = (async () => {
      try {
        const reply = await V.requestJSON("/api/v1/rate", {}, 15000);
        if (!reply.ok || !reply.body) throw new Error("HTTP " + reply.status);
        const first = rate === null;
        rate = reply.body;
        rateFetchedAt = Date.now();
        if (first) setUpSlider();
        showRate();
        showAmount(false);
      } catch (err) {
        if (!rate) {
          $("rate-line").textContent = V.t("We could not load the current rate. The invoice will show the exact amount.");
        }
      } finally {
        rateRequest = null;
      }
    })();
    return rateRequest;
  }

  function refreshRateIfOld() {
    if (Date.now() - rateFetchedAt > RATE_MAX_AGE_MS) refreshRate();
  }

  // -- price protection ------------------------------------------------------------------------------

  let slippageChosen = new URLSearchParams(location.search).has("slippage");

  function setUpSlider() {
    slider.max = String(rate.max_allowed_slippage_bps);
    if (!slippageChosen) slider.value = String(rate.default_max_slippage_bps);
    if (Number(slider.value) > Number(slider.max)) slider.value = slider.max;
    showSlippage();
  }

  function showSlippage() {
    const text = V.formatPercent(slider.value);
    $("slippage-value").textContent = text;
    $("slippage-summary").textContent = text;
    slider.setAttribute("aria-valuetext", V.t("{number} percent", { number: V.formatPercentNumber(slider.value) }));
  }

  // -- address ---------------------------------------------------------------------------------------

  function showAddress(force) {
    const result = V.checkAddress(address.value);
    const showError = !result.ok && (force || submitted || !result.empty);
    if (showError) V.setMessage(addressMsg, result.message, "error");
    else V.setMessage(addressMsg, result.ok ? result.message : "", "ok");
    address.setAttribute("aria-invalid", showError ? "true" : "false");
    address.dataset.valid = result.ok ? "true" : "false";
    const link = $("history-link");
    link.href = result.ok ? "/history?starknet_address=" + encodeURIComponent(address.value.trim()) : "/history";
    if (result.ok) checkAccountSoon(address.value.trim());
    return result;
  }

  // A typo mints to an address nobody controls: warn when no account is deployed there. Only a warning,
  // since accounts are often deployed on their first transaction, after the VUSD has arrived.
  let accountTimer = null;
  function checkAccountSoon(text) {
    clearTimeout(accountTimer);
    accountTimer = setTimeout(async () => {
      let answer;
      try {
        answer = await V.requestJSON("/api/v1/accounts/" + encodeURIComponent(text), null, 10000);
      } catch (err) {
        return; // no answer, no warning: the check is a courtesy
      }
      if (address.value.trim() !== text || !answer.ok || !answer.body) return;
      if (answer.body.deployed === false) {
        V.setMessage(addressMsg, V.t("No Starknet account is deployed at this address yet. If it is yours, that is " +
          "fine: the VUSD waits for it. If you typed it, check it again: VUSD sent to a wrong address is lost."),
          "warn");
      }
    }, 400);
  }

  // -- the Starknet wallet ---------------------------------------------------------------------------

  const walletButton = $("wallet-fill");
  const walletMsg = $("wallet-msg");

  function offerWallet() {
    walletButton.hidden = !V.starknetWallet();
  }

  async function fillFromWallet() {
    const provider = V.starknetWallet();
    if (!provider) {
      walletButton.hidden = true;
      V.setMessage(walletMsg,
        V.t("Your Starknet wallet is not available on this page any more. Type the address instead."), "error");
      return;
    }
    V.setMessage(walletMsg, "");
    walletButton.disabled = true;
    walletButton.setAttribute("aria-busy", "true");
    walletButton.textContent = V.t("Waiting for your wallet…");
    try {
      const account = await V.connectStarknet(provider);
      if (!account || !V.checkAddress(String(account)).ok) {
        V.setMessage(walletMsg, V.t("Your wallet did not give an account address. Type the address instead."), "error");
        return;
      }
      address.value = String(account);
      showAddress(false);
      V.setMessage(walletMsg, V.t("Filled in from your wallet."), "ok");
    } catch (err) {
      V.setMessage(walletMsg, V.walletDeclined(err)
        ? V.t("You did not connect your wallet, so the address was not filled in. Type it, or try again.")
        : V.t("Your wallet did not connect. Type the address instead, or try again."), "error");
    } finally {
      walletButton.disabled = false;
      walletButton.setAttribute("aria-busy", "false");
      walletButton.textContent = V.t("Use my Starknet wallet");
    }
  }

  // -- ordering --------------------------------------------------------------------------------------

  function showFormError(message, hint) {
    $("form-error-message").textContent = message;
    $("form-error-hint").textContent = hint || "";
    $("form-error-hint").hidden = !hint;
    errorBox.hidden = false;
    errorBox.focus();
  }

  function setBusy(on) {
    busy = on;
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
    const label = document.createElement("span");
    label.className = "btn-text";
    label.textContent = on ? V.t("Creating your invoice…") : V.t("Buy VUSD");
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    button.replaceChildren(...(on ? [spinner, label] : [label]));
  }

  async function submit(event) {
    event.preventDefault();
    if (busy) return;
    submitted = true;
    errorBox.hidden = true;
    const parsedAmount = showAmount(true);
    const checkedAddress = showAddress(true);
    if (!parsedAmount.ok || !checkedAddress.ok) {
      (parsedAmount.ok ? address : amount).focus();
      return;
    }
    setBusy(true);
    const order = {
      starknet_address: address.value.trim(),
      vusd_amount: parsedAmount.text,
      max_slippage_bps: Number(slider.value),
    };
    const body = JSON.stringify(order);
    if (attempt.body !== body) attempt = { body, key: newKey() };
    let reply;
    try {
      reply = await V.requestJSON("/api/v1/orders", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": attempt.key },
        body,
      }, 30000);
    } catch (err) {
      setBusy(false);
      showFormError(V.t("We could not reach VOLTA."),
        V.t("Check your connection and try again. No order was created."));
      return;
    }
    if (reply.status === 201 && reply.body && reply.body.checkout_url) {
      attempt = { body: "", key: "" }; // back on this page later, Buy means a new order
      try {
        localStorage.setItem(ADDRESS_KEY, order.starknet_address);
        rememberOrder(reply.body);
      } catch (err) {
        /* private mode: nothing to remember */
      }
      location.assign(reply.body.checkout_url);
      return;
    }
    setBusy(false);
    const answer = reply.body || {};
    const message = answer.message || V.t("The order was not created (HTTP {status}).", { status: reply.status });
    const hint = answer.hint || (reply.status >= 500 ? V.t("Try again in a minute.") : "");
    const code = String(answer.error || "") + " " + message;
    if (/amount|limit/i.test(code)) amount.setAttribute("aria-invalid", "true");
    if (/address/i.test(code)) address.setAttribute("aria-invalid", "true");
    showFormError(message, hint);
  }

  /** The history page shows these without proof of the address: this browser made them. */
  function rememberOrder(created) {
    let remembered = JSON.parse(localStorage.getItem(ORDERS_KEY) || "[]");
    if (!Array.isArray(remembered)) remembered = [];
    remembered = remembered.filter((entry) => entry && entry.order_id !== created.order_id);
    remembered.unshift({ order_id: created.order_id, starknet_address: created.starknet_address,
      created_at: created.created_at });
    localStorage.setItem(ORDERS_KEY, JSON.stringify(remembered.slice(0, MAX_REMEMBERED_ORDERS)));
  }

  // -- wiring ----------------------------------------------------------------------------------------

  if (!address.value) {
    try {
      address.value = localStorage.getItem(ADDRESS_KEY) || "";
    } catch (err) {
      /* no storage */
    }
  }

  amount.addEventListener("input", () => {
    showAmount(false);
    refreshRateIfOld();
  });
  amount.addEventListener("blur", () => {
    if (amount.value) showAmount(true);
  });
  address.addEventListener("input", () => showAddress(false));
  slider.addEventListener("input", () => {
    slippageChosen = true;
    showSlippage();
  });
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => {
      amount.value = V.formatVusd(chip.dataset.amount);
      showAmount(false);
      refreshRateIfOld();
    });
  }
  form.addEventListener("submit", submit);
  walletButton.addEventListener("click", fillFromWallet);
  offerWallet();
  setTimeout(offerWallet, 600); // some wallets inject themselves a moment after the page loads
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) setBusy(false);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshRateIfOld();
  });
  setInterval(() => {
    if (!document.hidden) refreshRateIfOld();
  }, 5000);

  showSlippage();
  showAmount(false);
  if (address.value) showAddress(false);
  refreshRate();
})();
