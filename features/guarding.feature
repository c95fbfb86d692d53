Feature: The service holds up against impatient clients, scripts and attackers
  Webhooks are signed both ways, retries never create a second order, and a script cannot fill the
  node with hold invoices.

  Background:
    Given the BTC/USD price is 97000.00
    And a buyer with a Starknet address

  Scenario: Forged, replayed and stale payment notices are rejected and change nothing
    When the buyer orders 25.00 VUSD
    And a payment notice for the order arrives signed with the wrong secret
    Then it is refused with 401 signature_invalid
    When a payment notice for the order arrives signed 10 minutes ago
    Then it is refused with 401 signature_expired
    When a correctly signed payment notice for the order arrives
    Then it is accepted for a re-check
    When the same notice is delivered again
    Then it is ignored as a duplicate
    And the order is still awaiting_payment

  Scenario: A burst of orders from one client is limited while another client gets through
    Given order creation is limited to 3 per minute per client
    When one client sends 5 orders at once
    Then exactly 3 are created and 2 get 429 with a Retry-After header
    And another client can still create an order

  Scenario: A retried order with the same idempotency key returns the same invoice
    When the buyer orders 25.00 VUSD with idempotency key "retry-me"
    And the buyer sends the very same request again
    Then both responses carry the same order and the same invoice
    When the buyer sends another amount with the same idempotency key
    Then that request is refused with 409 idempotency_conflict

  Scenario: A webhook receiver that fails twice gets the event once more after each failure
    Given a webhook receiver that fails twice and then succeeds
    When the buyer orders 25.00 VUSD
    Then the receiver eventually accepts the awaiting_payment event
    And the delivery log shows three tries for it: 500, 500, 200
    And every delivery the receiver saw carried a valid signature
