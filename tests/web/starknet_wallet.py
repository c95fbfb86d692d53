"""A Starknet wallet in the page, as get-starknet's injected interface (`window.starknet`: `enable()`,
`account.signMessage(typedData)`), that signs in Python with a devnet account's key: as the WebLN provider of
the checkout tests pays through the payer's lnd for real."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page

from tests.service.history_signing import sign_typed_data

PROVIDER = """
(() => {
  const address = %(address)s;
  const declineFirst = %(decline_first)s;
  let asked = 0;
  window.starknet = {
    id: "volta-test-wallet",
    name: "VOLTA test wallet",
    isConnected: false,
    selectedAddress: undefined,
    account: {
      address: undefined,
      async signMessage(typedData) {
        asked += 1;
        if (declineFirst && asked === 1) throw new Error("User abort");
        return window.volta_starknet_sign(typedData);
      },
    },
    async enable() {
      this.isConnected = true;
      this.selectedAddress = address;
      this.account.address = address;
      return [address];
    },
  };
})();
"""


def inject_starknet_wallet(page: Page, account: dict[str, str], decline_first: bool = False) -> list[dict[str, Any]]:
    """Puts the wallet of `account` ({"address", "private_key"}) into every page this page opens; returns the
    typed data it was asked to sign (its first request is declined when `decline_first`)."""
    asked: list[dict[str, Any]] = []

    def volta_starknet_sign(typed_data: dict[str, Any]) -> list[str]:
        asked.append(typed_data)
        return sign_typed_data(typed_data, account["address"], account["private_key"])

    page.expose_function("volta_starknet_sign", volta_starknet_sign)
    page.add_init_script(PROVIDER % {"address": json.dumps(account["address"]),
                                     "decline_first": json.dumps(decline_first)})
    return asked
