//! Vault: the Lightning minter. The off-chain operator account calls `mint_for_payment` once a
//! Lightning invoice is settled; each payment hash can mint only once.
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
    fn set_operator(ref self: TContractState, new_operator: ContractAddress);
    fn get_operator(self: @TContractState) -> ContractAddress;
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
        operator: ContractAddress,
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
        OperatorChanged: OperatorChanged,
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
    struct OperatorChanged {
        previous_operator: ContractAddress,
        new_operator: ContractAddress,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState, owner: ContractAddress, operator: ContractAddress, vusd: ContractAddress
    ) {
        assert(!owner.is_zero(), 'ZERO_OWNER');
        assert(!operator.is_zero(), 'ZERO_OPERATOR');
        assert(!vusd.is_zero(), 'ZERO_VUSD');
        self.owner.write(owner);
        self.operator.write(operator);
        self.vusd.write(vusd);
    }

    #[external(v0)]
    impl VaultImpl of super::IVault<ContractState> {
        fn mint_for_payment(
            ref self: ContractState, recipient: ContractAddress, amount: u256, payment_hash: u256
        ) {
            assert(get_caller_address() == self.operator.read(), 'ONLY_OPERATOR');
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

        fn set_operator(ref self: ContractState, new_operator: ContractAddress) {
            self._assert_owner();
            assert(!new_operator.is_zero(), 'ZERO_OPERATOR');
            let previous_operator = self.operator.read();
            self.operator.write(new_operator);
            self.emit(Event::OperatorChanged(OperatorChanged { previous_operator, new_operator }));
        }

        fn get_operator(self: @ContractState) -> ContractAddress {
            self.operator.read()
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
    }
}
