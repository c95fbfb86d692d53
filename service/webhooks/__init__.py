"""Signed webhooks: out (state changes to the merchant's URLs, from a durable outbox) and in (payment
notices from a hosted node, which only trigger a re-check with our own node)."""
