//! Vault: the Lightning minter. An operator account calls `mint_for_payment` while the payer's HTLC
//! is held; each payment hash can mint only once, whichever operator sends it. The owner keeps a set of
//! operators (one per mint lane of the service: each has its own nonce), adding and removing them.
//! Written for the Cairo 2.1.0 compiler (see README.md).

use starknet::ContractAddress;

#[starknet::interface]
trait IVault<TContractState> {
    fn mint_for_payment(
        ref self: TContractState, recipient: ContractAddress, amount: u256, payment_hash: u256
    );
    fn is_payment_used(self: @TContractState, payment_hash: u256) -> bool;
    fn pause(ref self: TContractState);
    fn unpause(ref self: TContractState);
    fn is_paused(self: @TContractState) -> bool;
    fn add_operator(ref self: TContractState, operator: ContractAddress);
    fn remove_operator(ref self: TContractState, operator: ContractAddress);
    fn is_operator(self: @TContractState, account: ContractAddress) -> bool;
    fn operator_count(self: @TContractState) -> u32;
    fn get_owner(self: @TContractState) -> ContractAddress;
    fn get_vusd(self: @TContractState) -> ContractAddress;
}

#[starknet::contract]
mod Vault {
    use starknet::ContractAddress;
    use starknet::get_caller_address;
    use zeroable::Zeroable;
    use volta::vusd::IVUSDMintDispatcher;
    use volta::vusd::IVUSDMintDispatcherTrait;

    #[storage]
    struct Storage {
        owner: ContractAddress,
        operators: LegacyMap<ContractAddress, bool>,
        operator_count: u32,
        vusd: ContractAddress,
        paused: bool,
        used_payments: LegacyMap<u256, bool>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        LightningMint: LightningMint,
        Paused: Paused,
        Unpaused: Unpaused,
        OperatorAdded: OperatorAdded,
        OperatorRemoved: OperatorRemoved,
    }

    #[derive(Drop, starknet::Event)]
    struct LightningMint {
        #[key]
        payment_hash: u256,
        recipient: ContractAddress,
        amount: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct Paused {
        account: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct Unpaused {
        account: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct OperatorAdded {
        #[key]
        operator: ContractAddress,
        by: ContractAddress,
    }

    #[derive(Drop, starknet::Event)]
    struct OperatorRemoved {
        #[key]
        operator: ContractAddress,
        by: ContractAddress,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState, owner: ContractAddress, operator: ContractAddress, vusd: ContractAddress
    ) {
        assert(!owner.is_zero(), 'ZERO_OWNER');
        assert(!operator.is_zero(), 'ZERO_OPERATOR');
        assert(!vusd.is_zero(), 'ZERO_VUSD');
        self.owner.write(owner);
        self.vusd.write(vusd);
        self._add_operator(operator, owner);
    }

    #[external(v0)]
    impl VaultImpl of super::IVault<ContractState> {
        fn mint_for_payment(
            ref self: ContractState, recipient: ContractAddress, amount: u256, payment_hash: u256
        ) {
            assert(self.operators.read(get_caller_address()), 'ONLY_OPERATOR');
            assert(!self.paused.read(), 'PAUSED');
            assert(!self.used_payments.read(payment_hash), 'PAYMENT_ALREADY_USED');
            assert(!recipient.is_zero(), 'ZERO_RECIPIENT');
            assert(amount != 0_u256, 'ZERO_AMOUNT');
            self.used_payments.write(payment_hash, true);
            IVUSDMintDispatcher { contract_address: self.vusd.read() }.mint(recipient, amount);
            self.emit(Event::LightningMint(LightningMint { payment_hash, recipient, amount }));
        }

        fn is_payment_used(self: @ContractState, payment_hash: u256) -> bool {
            self.used_payments.read(payment_hash)
        }

        fn pause(ref self: ContractState) {
            self._assert_owner();
            self.paused.write(true);
            self.emit(Event::Paused(Paused { account: get_caller_address() }));
        }

        fn unpause(ref self: ContractState) {
            self._assert_owner();
            self.paused.write(false);
            self.emit(Event::Unpaused(Unpaused { account: get_caller_address() }));
        }

        fn is_paused(self: @ContractState) -> bool {
            self.paused.read()
        }

        fn add_operator(ref self: ContractState, operator: ContractAddress) {
            self._assert_owner();
            self._add_operator(operator, get_caller_address());
        }

        fn remove_operator(ref self: ContractState, operator: ContractAddress) {
            self._assert_owner();
            assert(self.operators.read(operator), 'NOT_AN_OPERATOR');
            self.operators.write(operator, false);
            self.operator_count.write(self.operator_count.read() - 1);
            self.emit(Event::OperatorRemoved(OperatorRemoved { operator, by: get_caller_address() }));
        }

        fn is_operator(self: @ContractState, account: ContractAddress) -> bool {
            self.operators.read(account)
        }

        fn operator_count(self: @ContractState) -> u32 {
            self.operator_count.read()
        }

        fn get_owner(self: @ContractState) -> ContractAddress {
            self.owner.read()
        }

        fn get_vusd(self: @ContractState) -> ContractAddress {
            self.vusd.read()
        }
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _assert_owner(self: @ContractState) {
            assert(get_caller_address() == self.owner.read(), 'ONLY_OWNER');
        }

        fn _add_operator(ref self: ContractState, operator: ContractAddress, by: ContractAddress) {
            assert(!operator.is_zero(), 'ZERO_OPERATOR');
            assert(!self.operators.read(operator), 'ALREADY_OPERATOR');
            self.operators.write(operator, true);
            self.operator_count.write(self.operator_count.read() + 1);
            self.emit(Event::OperatorAdded(OperatorAdded { operator, by }));
        }
    }
}
