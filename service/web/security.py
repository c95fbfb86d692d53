"""The pages' Content-Security-Policy: same origin only, no inline script or style, no CDN, no third party;
the one exception is the WebSocket to a Nostr Wallet Connect relay the buyer's own wallet names."""

from __future__ import annotations

import logging
import re
from functools import cache
from pathlib import Path

from service.config import Settings

log = logging.getLogger(__name__)

# Nostr Wallet Connect (the checkout's "Connect wallet", Bitcoin Connect) talks to the buyer's wallet through a
# Nostr relay: a WebSocket from the page to whichever relay the wallet's connection string names (Alby Hub's,
# coinos', a self-hosted one...). The operator cannot know those in advance, so by default connect-src allows
# any relay over TLS (`wss:`) and nothing else beyond 'self' (no ws:, no https: to third parties). That widens
# only connect-src: script-src stays 'self', so no injected or third-party script runs to use the socket, and
# the connection string (the wallet's secret) stays in the page. An operator who knows the wallets its buyers
# use can narrow it to a list (VOLTA_NWC_RELAYS, Settings.nwc_relays: checked at start, an entry that is no
# relay origin stops the service rather than widening the policy), at the price of NWC failing for other wallets.
ANY_TLS_RELAY = "wss:"

# Bitcoin Connect styles its web components with constructable stylesheets (adoptedStyleSheets, which CSP does
# not govern), except one thing: each connector tile's colour, a `style="background: #rrggbb;"` attribute. Those
# exact values, and no other inline style, are allowed by hash ('unsafe-hashes' applies the hashes to style
# attributes; CSP level 3, style-src-attr). scripts/vendor_bitcoin_connect.sh writes the hashes with the bundle.
BITCOIN_CONNECT_STYLE_HASHES = Path(__file__).parent / "static" / "vendor" / "bitcoin-connect" / "style-attr-hashes.txt"


@cache
def bitcoin_connect_style_hashes() -> tuple[str, ...]:
    try:
        lines = BITCOIN_CONNECT_STYLE_HASHES.read_text().split()
    except FileNotFoundError:  # not vendored: the tiles lose their colour, nothing else
        log.warning("%s is missing: run scripts/vendor_bitcoin_connect.sh", BITCOIN_CONNECT_STYLE_HASHES)
        return ()
    return tuple(line for line in lines if re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", line))


def directives(connect_sources: list[str], style_hashes: tuple[str, ...] = ()) -> str:
    """Same origin for everything, but WebSockets to `connect_sources` and style attributes with `style_hashes`."""
    connect = " ".join(["'self'", *connect_sources])
    style_attributes = f"'unsafe-hashes' {' '.join(style_hashes)}" if style_hashes else "'none'"
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr {style_attributes}; "
        f"img-src 'self' data:; connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'"
    )


def content_security_policy(settings: Settings, wallet_connect: bool = False) -> str:
    """Only the origins the operator allows (VOLTA_FRAME_ANCESTORS) may show the pages in an iframe; none by
    default. Only a page with Bitcoin Connect on it (`wallet_connect`: the checkout) may open WebSockets to the Nostr
    Wallet Connect relays of VOLTA_NWC_RELAYS (by default any TLS relay) and carry its tiles' colours: every other
    page stays same-origin only."""
    allowed = " ".join(settings.frame_ancestors) or "'none'"
    if wallet_connect:
        policy = directives(settings.nwc_relays or [ANY_TLS_RELAY], bitcoin_connect_style_hashes())
    else:
        policy = directives([])
    return f"{policy}; frame-ancestors {allowed}"
