"""The pages' Content-Security-Policy: same origin only, no inline script or style, no CDN, no third party."""

from __future__ import annotations

from service.config import Settings

SAME_ORIGIN_ONLY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)


def content_security_policy(settings: Settings) -> str:
    """Only the origins the operator allows (VOLTA_FRAME_ANCESTORS) may show the pages in an iframe; none by
    default."""
    allowed = " ".join(settings.frame_ancestors) or "'none'"
    return f"{SAME_ORIGIN_ONLY}; frame-ancestors {allowed}"
