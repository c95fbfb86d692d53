"""A Starknet wallet in the page, as get-starknet's injected interface (`window.starknet`: `enable()`,
`account.signMessage(typedData)`, and `request({type, params})` of the Starknet wallet API for
`wallet_requestAccounts` and `wallet_watchAsset`), that signs in Python with a devnet account's key: as the
WebLN provider of the checkout tests pays through the payer's lnd for real."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from playwright.sync_api import Page

from tests.service.history_signing import sign_typed_data

PROVIDER = """
(() => {
  const address = %(address)s;
  const declines = new Set(%(declines)s);  // calls whose first attempt the person declines
  const counts = {};
  function ask(what) {
    counts[what] = (counts[what] || 0) + 1;
    if (declines.has(what) && counts[what] === 1) throw new Error("User abort");
  }
  window.starknet = {
    id: "volta-test-wallet",
    name: "VOLTA test wallet",
    isConnected: false,
    selectedAddress: undefined,
    account: {
      address: undefined,
      async signMessage(typedData) {
        ask("signMessage");
        return window.volta_starknet_sign(typedData);
      },
    },
    async enable() {
      ask("enable");
      this.isConnected = true;
      this.selectedAddress = address;
      this.account.address = address;
      return [address];
    },
    async request(call) {
      await window.volta_starknet_request(call);
      if (call.type === "wallet_requestAccounts") return this.enable();
      ask(call.type);
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
    typed data it was asked to sign. The first call of each name in `declines` ("enable", "signMessage",
    "wallet_watchAsset") is declined, as when the person taps "reject"; `decline_first` declines the first
    signature. Every `request({type, params})` the page makes is appended to `requests` when given."""
    asked: list[dict[str, Any]] = []
    declined = set(declines) | ({"signMessage"} if decline_first else set())

    def volta_starknet_sign(typed_data: dict[str, Any]) -> list[str]:
        asked.append(typed_data)
        return sign_typed_data(typed_data, account["address"], account["private_key"])

    def volta_starknet_request(call: dict[str, Any]) -> None:
        if requests is not None:
            requests.append(call)

    page.expose_function("volta_starknet_sign", volta_starknet_sign)
    page.expose_function("volta_starknet_request", volta_starknet_request)
    page.add_init_script(PROVIDER % {"address": json.dumps(account["address"]),
                                     "declines": json.dumps(sorted(declined))})
    return asked
