/* Helpers shared by the VOLTA pages: the page's words and number formats in the reader's language, the Starknet
   address check, copying, fetching JSON, the injected Starknet wallet. */
"use strict";

window.VOLTA = (function () {
  const FELT_LIMIT = 1n << 251n;

  // -- the reader's language -------------------------------------------------------------------------
  // The server picks the language (the switch's cookie, else Accept-Language) and writes it into <html lang>,
  // with the scripts' words translated (#script-words, English text -> translation; see service/web/i18n.py).

  const lang = document.documentElement.lang || "en";
  const wordsElement = document.getElementById("script-words");
  const words = wordsElement ? JSON.parse(wordsElement.textContent) : {};
  const plurals = new Intl.PluralRules(lang);
  const groups = new Intl.NumberFormat(lang);
  const decimalSeparator = groups.formatToParts(1.5).find((part) => part.type === "decimal").value;
  const groupPart = groups.formatToParts(10000).find((part) => part.type === "group");
  const groupSeparator = groupPart ? groupPart.value : "";

  /** A number as the reader types it, "1.000,50" in German or "1,000.50" in English, as "1000.50": group
      separators go only where they group thousands (so "1.000" in English stays one with three decimals), and the
      reader's decimal separator becomes ".". Anything else is returned as it is, for the caller to refuse. */
  function plainNumber(text) {
    let plain = String(text);
    const escape = (sign) => sign.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    if (groupSeparator) {
      const grouped = new RegExp(`^\\d{1,3}(${escape(groupSeparator)}\\d{3})+(${escape(decimalSeparator)}\\d*)?$`);
      if (grouped.test(plain)) plain = plain.split(groupSeparator).join("");
    }
    if (decimalSeparator !== "." && plain.split(decimalSeparator).length === 2) {
      plain = plain.replace(decimalSeparator, ".");
    }
    return plain;
  }

  /** "{name}" placeholders filled from `values`. */
  function fillIn(text, values) {
    return String(text).replace(/\{(\w+)\}/g, (whole, name) =>
      (values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole));
  }

  /** The reader's words for an English text (marked V.t("…") so scripts/update_translations.sh finds it). */
  function t(text, values) {
    const translated = words[text];
    return fillIn(typeof translated === "string" && translated ? translated : text, values);
  }

  /** Counted words: V.tn("{n} minute", "{n} minutes", n) in the reader's plural form, with {n} filled in. */
  function tn(singular, plural, count, values) {
    const forms = words[singular];
    const form = plurals.select(count) === "one" ? "one" : "other";
    const fallback = form === "one" ? singular : plural;
    const text = forms && typeof forms === "object" && forms[form] ? forms[form] : fallback;
    return fillIn(text, Object.assign({ n: formatCount(count) }, values || {}));
  }

  function formatCount(count) {
    return groups.format(count);
  }

  /** 25773190 msat -> "25,773.19" (German "25.773,19"); whole sats without decimals. */
  function formatSats(amountMsat) {
    const msat = BigInt(amountMsat);
    const whole = msat / 1000n;
    const rest = msat % 1000n;
    const text = groups.format(whole);
    return rest === 0n ? text : text + decimalSeparator + rest.toString().padStart(3, "0").replace(/0+$/, "");
  }

  /** A decimal string such as "1000.5" -> "1,000.50" (German "1.000,50"), with no float rounding on the way. */
  function formatVusd(amount) {
    const text = String(amount).trim();
    const match = /^(\d+)(?:\.(\d*))?$/.exec(text);
    if (!match) return text;
    const cents = ((match[2] || "") + "00").slice(0, 2);
    return groups.format(BigInt(match[1])) + decimalSeparator + cents;
  }

  /** Basis points as a percentage number with two decimals: 100 -> "1.00" (German "1,00"). */
  function formatPercentNumber(bps) {
    return (Number(bps) / 100).toFixed(2).replace(".", decimalSeparator);
  }

  function formatPercent(bps) {
    return formatPercentNumber(bps) + "\u00a0%";
  }

  /** A time of day (hours, minutes, seconds) as the reader writes it. */
  function formatTime(date) {
    return date.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  /**
   * Checks a Starknet address as the service does: 0x + 1..64 hex digits, not zero, below 2**251.
   * Returns {ok, empty, message}; the message is for people.
   */
  function checkAddress(raw) {
    const text = String(raw || "").trim();
    if (!text) {
      return { ok: false, empty: true, message: t("Enter the Starknet address that should receive the VUSD.") };
    }
    if (!text.startsWith("0x")) {
      return { ok: false, message: t("A Starknet address starts with 0x, a lower-case x (for example 0x04a1…).") };
    }
    const digits = text.slice(2).toLowerCase();
    if (!digits) return { ok: false, message: t("Keep going: add the hex digits after 0x.") };
    if (!/^[0-9a-f]+$/.test(digits)) {
      const bad = digits.replace(/[0-9a-f]/g, "").charAt(0);
      const message = t("“{character}” cannot be in an address: after 0x only 0–9 and a–f are allowed.",
        { character: bad });
      return { ok: false, message };
    }
    if (digits.length > 64) {
      return { ok: false, message: t("That is {count} hex digits; a Starknet address has at most 64.",
        { count: digits.length }) };
    }
    const value = BigInt("0x" + digits);
    if (value === 0n) return { ok: false, message: t("The zero address cannot receive VUSD.") };
    if (value >= FELT_LIMIT) {
      const message = t("That number is too large to be a Starknet address (it must be below 2²⁵¹).");
      return { ok: false, message };
    }
    return { ok: true, message: t("Looks like a Starknet address.") };
  }

  /** Copies text; falls back to a hidden textarea where the Clipboard API is missing or refused. */
  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (err) {
      /* fall through to the old way */
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.appendChild(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch (err) {
      done = false;
    }
    area.remove();
    return done;
  }

  /** fetch() that returns {ok, status, body, retryAfterS}; body is parsed JSON or null, retryAfterS the
      Retry-After header in seconds (0 without one). Never throws for HTTP errors. */
  async function requestJSON(url, options, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs || 20000);
    try {
      const response = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options || {},
        { signal: controller.signal }));
      let body = null;
      try {
        body = await response.json();
      } catch (err) {
        body = null;
      }
      return { ok: response.ok, status: response.status, body,
        retryAfterS: Number(response.headers.get("Retry-After")) || 0 };
    } finally {
      clearTimeout(timer);
    }
  }

  function setMessage(element, text, kind) {
    element.textContent = text || "";
    element.classList.remove("is-error", "is-ok", "is-warn");
    if (text && kind) element.classList.add("is-" + kind);
  }

  // -- the Starknet wallet in the browser ----------------------------------------------------------------
  // The provider get-starknet's wallets inject (window.starknet, or window.starknet_<id> per wallet), used
  // directly: two calls need no library (history.js signs through the same provider).

  /** The injected Starknet wallet, or null. */
  function starknetWallet() {
    const usable = (candidate) => candidate && typeof candidate === "object" &&
      (typeof candidate.enable === "function" || typeof candidate.request === "function");
    if (usable(window.starknet)) return window.starknet;
    for (const key of Object.keys(window)) {
      if (key.startsWith("starknet_") && usable(window[key])) return window[key];
    }
    return null;
  }

  /** Asks the wallet to connect; returns its account's address (throws when the person declines). */
  async function connectStarknet(provider) {
    if (typeof provider.enable === "function") {
      const accounts = await provider.enable();
      return (accounts && accounts[0]) || provider.selectedAddress || (provider.account && provider.account.address);
    }
    const accounts = await provider.request({ type: "wallet_requestAccounts" });
    return accounts && accounts[0];
  }

  /** Whether a wallet's error means the person said no (wallets word it differently). */
  function walletDeclined(err) {
    return /reject|declin|abort|cancel|denied|refused/i.test(String((err && err.message) || err));
  }

  return { lang, t, tn, decimalSeparator, plainNumber, formatCount, formatSats, formatVusd, formatPercent,
    formatPercentNumber, formatTime, checkAddress, copyText, requestJSON, setMessage, starknetWallet, connectStarknet,
    walletDeclined };
})();
