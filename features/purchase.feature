Feature: Buying VUSD with a Lightning payment
  A person asks for VUSD, pays the Lightning invoice from their wallet, and either holds VUSD on
  Starknet or keeps their bitcoin. The service holds the payment until the mint is done, so there is
  never a partial settlement: VUSD and a settled payment, or no VUSD and the sats back.

  Background:
    Given the BTC/USD price is 97000.00
    And a buyer with a Starknet address

  Scenario: The happy path
    When the buyer orders 25.00 VUSD
    And the payer pays the invoice
    Then the order ends completed
    And the buyer's VUSD balance grew by 25.00
    And the payer's payment succeeded
    And the order's history is awaiting_payment, payment_held, minting, minted, completed

  Scenario: The price moves beyond the bound between quote and payment
    When the buyer orders 25.00 VUSD with a slippage bound of 100 bps
    And the BTC/USD price moves to 99000.00
    And the payer pays the invoice
    Then the order ends refunded with reason slippage_exceeded
    And the payer's payment failed
    And the payer's spendable balance is back where it was
    And the buyer's VUSD balance did not change

  Scenario: Nobody pays
    Given quotes live for 5 seconds
    When the buyer orders 25.00 VUSD
    And nobody pays
    Then the order ends expired
    And the buyer's VUSD balance did not change

  Scenario: The same invoice is paid twice
    When the buyer orders 25.00 VUSD
    And the payer pays the invoice
    Then the order ends completed
    When the router pays the same invoice again
    Then that second payment fails
    And the buyer's VUSD balance grew by 25.00
    And the vault knows the payment hash as used

  Scenario: The vault is paused
    Given the vault is paused
    When the buyer orders 25.00 VUSD
    And the payer pays the invoice
    Then the order ends refunded with reason mint_failed
    And the payer's payment failed
    And the payer's spendable balance is back where it was
    And the buyer's VUSD balance did not change

  Scenario Outline: The service is killed in the middle of an order
    Given the service will stall right after entering <state>
    When the buyer orders 25.00 VUSD
    And the payer pays the invoice
    And the order reaches <state>
    And the service is killed with SIGKILL and started again
    Then the order ends completed
    And the buyer's VUSD balance grew by 25.00
    And the payer's payment succeeded

    Examples:
      | state   |
      | minting |
      | minted  |

  Scenario: The service is killed after its mint landed but before it wrote that down
    Given the service will stall right after entering mint_accepted
    When the buyer orders 25.00 VUSD
    And the payer pays the invoice
    And the vault has the payment hash as used
    And the service is killed with SIGKILL and started again
    Then the order ends completed
    And the buyer's VUSD balance grew by 25.00
    And the payer's payment succeeded
    And the order's history shows the mint was found on the vault
