"""A Starknet wallet in the page, as get-starknet's injected interface (`window.starknet`: `enable()`,
`account.signMessage(typedData)`, and `request({type, params})` of the Starknet wallet API for
`wallet_requestAccounts` and `wallet_watchAsset`), that signs in Python with a devnet account's key: as the
WebLN provider of the checkout tests pays through the payer's lnd for real."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from playwright.sync_api import Page

from tests.service.history_signing import sign_typed_data

PROVIDER = """
(() => {
  const address = %(address)s;
  // Python keeps the count of every call, across the pages this page opens, and says which one to decline.
  async function ask(what, call) {
    if (await window.volta_starknet_ask(what, call || null)) throw new Error("User abort");
  }
  window.starknet = {
    id: "volta-test-wallet",
    name: "VOLTA test wallet",
    isConnected: false,
    selectedAddress: undefined,
    account: {
      address: undefined,
      async signMessage(typedData) {
        await ask("signMessage");
        return window.volta_starknet_sign(typedData);
      },
    },
    async enable() {
      await ask("enable");
      this.isConnected = true;
      this.selectedAddress = address;
      this.account.address = address;
      return [address];
    },
    async request(call) {
      if (call.type === "wallet_requestAccounts") return this.enable();
      await ask(call.type, call);
      if (call.type === "wallet_watchAsset") return true;
      throw new Error(`VOLTA test wallet: ${call.type} is not supported`);
    },
  };
})();
"""


def inject_starknet_wallet(page: Page, account: dict[str, str], decline_first: bool = False,
                           declines: Iterable[str] = (),
                           requests: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Puts the wallet of `account` ({"address", "private_key"}) into every page this page opens; returns the
    typed data it was asked to sign. The first call of each name in `declines` ("enable", "signMessage", or a
    request type such as "wallet_watchAsset") is declined, as when the person taps "reject"; `decline_first`
    declines the first signature. Every `request({type, params})` other than wallet_requestAccounts that the
    pages make is appended to `requests` when given."""
    asked: list[dict[str, Any]] = []
    declined = set(declines) | ({"signMessage"} if decline_first else set())
    calls: Counter[str] = Counter()

    def volta_starknet_ask(what: str, call: dict[str, Any] | None) -> bool:
        calls[what] += 1
        if call is not None and requests is not None:
            requests.append(call)
        return what in declined and calls[what] == 1

    def volta_starknet_sign(typed_data: dict[str, Any]) -> list[str]:
        asked.append(typed_data)
        return sign_typed_data(typed_data, account["address"], account["private_key"])

    page.expose_function("volta_starknet_ask", volta_starknet_ask)
    page.expose_function("volta_starknet_sign", volta_starknet_sign)
    page.add_init_script(PROVIDER % {"address": json.dumps(account["address"])})
    return asked
