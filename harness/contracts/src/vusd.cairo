//! VUSD: an ERC20 stablecoin whose supply only grows through the Lightning vault (the minter).
//! Deploy order: deploy VUSD(name, symbol, owner), deploy Vault(owner, operator, vusd), then the
//! owner calls `set_minter(vault)` exactly once.
//! Written for the Cairo 2.1.0 compiler (see README.md).

use starknet::ContractAddress;

#[starknet::interface]
trait IERC20<TContractState> {
    fn name(self: @TContractState) -> felt252;
    fn symbol(self: @TContractState) -> felt252;
    fn decimals(self: @TContractState) -> u8;
    fn total_supply(self: @TContractState) -> u256;
    fn balance_of(self: @TContractState, account: ContractAddress) -> u256;
    fn allowance(self: @TContractState, owner: ContractAddress, spender: ContractAddress) -> u256;
    fn transfer(ref self: TContractState, recipient: ContractAddress, amount: u256) -> bool;
    fn transfer_from(
        ref self: TContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) -> bool;
    fn approve(ref self: TContractState, spender: ContractAddress, amount: u256) -> bool;
}

/// camelCase aliases used by wallets and older tooling.
#[starknet::interface]
trait IERC20Camel<TContractState> {
    fn totalSupply(self: @TContractState) -> u256;
    fn balanceOf(self: @TContractState, account: ContractAddress) -> u256;
    fn transferFrom(
        ref self: TContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
    ) -> bool;
}

#[starknet::interface]
trait IVUSDMint<TContractState> {
    fn mint(ref self: TContractState, recipient: ContractAddress, amount: u256);
    fn set_minter(ref self: TContractState, minter: ContractAddress);
    fn get_minter(self: @TContractState) -> ContractAddress;
    fn get_owner(self: @TContractState) -> ContractAddress;
}

#[starknet::contract]
mod VUSD {
    use starknet::ContractAddress;
    use starknet::get_caller_address;
    use starknet::contract_address_const;
    use zeroable::Zeroable;

    #[storage]
    struct Storage {
        name: felt252,
        symbol: felt252,
        total_supply: u256,
        balances: LegacyMap<ContractAddress, u256>,
        allowances: LegacyMap<(ContractAddress, ContractAddress), u256>,
        owner: ContractAddress,
        minter: ContractAddress,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        Transfer: Transfer,
        Approval: Approval,
        MinterSet: MinterSet,
    }

    #[derive(Drop, starknet::Event)]
    struct Transfer {
        #[key]
        from: ContractAddress,
        #[key]
        to: ContractAddress,
        value: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct Approval {
        #[key]
        owner: ContractAddress,
        #[key]
        spender: ContractAddress,
        value: u256,
    }

    #[derive(Drop, starknet::Event)]
    struct MinterSet {
        #[key]
        minter: ContractAddress,
    }

    #[constructor]
    fn constructor(ref self: ContractState, name: felt252, symbol: felt252, owner: ContractAddress) {
        assert(!owner.is_zero(), 'ZERO_OWNER');
        self.name.write(name);
        self.symbol.write(symbol);
        self.owner.write(owner);
    }

    #[external(v0)]
    impl ERC20Impl of super::IERC20<ContractState> {
        fn name(self: @ContractState) -> felt252 {
            self.name.read()
        }

        fn symbol(self: @ContractState) -> felt252 {
            self.symbol.read()
        }

        fn decimals(self: @ContractState) -> u8 {
            18_u8
        }

        fn total_supply(self: @ContractState) -> u256 {
            self.total_supply.read()
        }

        fn balance_of(self: @ContractState, account: ContractAddress) -> u256 {
            self.balances.read(account)
        }

        fn allowance(self: @ContractState, owner: ContractAddress, spender: ContractAddress) -> u256 {
            self.allowances.read((owner, spender))
        }

        fn transfer(ref self: ContractState, recipient: ContractAddress, amount: u256) -> bool {
            let sender = get_caller_address();
            self._transfer(sender, recipient, amount);
            true
        }

        fn transfer_from(
            ref self: ContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
        ) -> bool {
            let spender = get_caller_address();
            self._spend_allowance(sender, spender, amount);
            self._transfer(sender, recipient, amount);
            true
        }

        fn approve(ref self: ContractState, spender: ContractAddress, amount: u256) -> bool {
            let owner = get_caller_address();
            self._approve(owner, spender, amount);
            true
        }
    }

    #[external(v0)]
    impl ERC20CamelImpl of super::IERC20Camel<ContractState> {
        fn totalSupply(self: @ContractState) -> u256 {
            self.total_supply.read()
        }

        fn balanceOf(self: @ContractState, account: ContractAddress) -> u256 {
            self.balances.read(account)
        }

        fn transferFrom(
            ref self: ContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
        ) -> bool {
            let spender = get_caller_address();
            self._spend_allowance(sender, spender, amount);
            self._transfer(sender, recipient, amount);
            true
        }
    }

    #[external(v0)]
    impl VUSDMintImpl of super::IVUSDMint<ContractState> {
        fn mint(ref self: ContractState, recipient: ContractAddress, amount: u256) {
            let minter = self.minter.read();
            assert(!minter.is_zero(), 'MINTER_NOT_SET');
            assert(get_caller_address() == minter, 'ONLY_MINTER');
            assert(!recipient.is_zero(), 'MINT_TO_ZERO');
            self.total_supply.write(self.total_supply.read() + amount);
            self.balances.write(recipient, self.balances.read(recipient) + amount);
            let zero = contract_address_const::<0>();
            self.emit(Event::Transfer(Transfer { from: zero, to: recipient, value: amount }));
        }

        fn set_minter(ref self: ContractState, minter: ContractAddress) {
            assert(get_caller_address() == self.owner.read(), 'ONLY_OWNER');
            assert(self.minter.read().is_zero(), 'MINTER_ALREADY_SET');
            assert(!minter.is_zero(), 'ZERO_MINTER');
            self.minter.write(minter);
            self.emit(Event::MinterSet(MinterSet { minter }));
        }

        fn get_minter(self: @ContractState) -> ContractAddress {
            self.minter.read()
        }

        fn get_owner(self: @ContractState) -> ContractAddress {
            self.owner.read()
        }
    }

    #[generate_trait]
    impl InternalImpl of InternalTrait {
        fn _transfer(
            ref self: ContractState, sender: ContractAddress, recipient: ContractAddress, amount: u256
        ) {
            assert(!sender.is_zero(), 'TRANSFER_FROM_ZERO');
            assert(!recipient.is_zero(), 'TRANSFER_TO_ZERO');
            let sender_balance = self.balances.read(sender);
            assert(sender_balance >= amount, 'INSUFFICIENT_BALANCE');
            self.balances.write(sender, sender_balance - amount);
            self.balances.write(recipient, self.balances.read(recipient) + amount);
            self.emit(Event::Transfer(Transfer { from: sender, to: recipient, value: amount }));
        }

        fn _approve(
            ref self: ContractState, owner: ContractAddress, spender: ContractAddress, amount: u256
        ) {
            assert(!owner.is_zero(), 'APPROVE_FROM_ZERO');
            assert(!spender.is_zero(), 'APPROVE_TO_ZERO');
            self.allowances.write((owner, spender), amount);
            self.emit(Event::Approval(Approval { owner, spender, value: amount }));
        }

        fn _spend_allowance(
            ref self: ContractState, owner: ContractAddress, spender: ContractAddress, amount: u256
        ) {
            let current = self.allowances.read((owner, spender));
            assert(current >= amount, 'INSUFFICIENT_ALLOWANCE');
            self.allowances.write((owner, spender), current - amount);
        }
    }
}
