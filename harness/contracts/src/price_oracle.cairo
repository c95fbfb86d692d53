//! PriceOracle: a stand-in for the Pragma oracle exposing Pragma's read interface
//! (`get_data_median`) with the same calldata/return layout, plus an owner-only `set_price`.
//! Unknown pairs return an all-zero response (num_sources_aggregated == 0), like an empty feed.
//! Written for the Cairo 2.1.0 compiler (see README.md).

use starknet::ContractAddress;

/// Same variants, order and payloads as Pragma's `DataType`.
#[derive(Drop, Copy, Serde)]
enum DataType {
    SpotEntry: felt252,
    FutureEntry: (felt252, u64),
    GenericEntry: felt252,
}

/// Same fields and order as Pragma's `PragmaPricesResponse`.
#[derive(Drop, Copy, Serde)]
struct PragmaPricesResponse {
    price: u128,
    decimals: u32,
    last_updated_timestamp: u64,
    num_sources_aggregated: u32,
    expiration_timestamp: Option<u64>,
}

#[starknet::interface]
trait IPragmaABI<TContractState> {
    fn get_data_median(self: @TContractState, data_type: DataType) -> PragmaPricesResponse;
}

#[starknet::interface]
trait IPriceOracleAdmin<TContractState> {
    fn set_price(ref self: TContractState, pair_id: felt252, price: u128, decimals: u32);
    fn get_owner(self: @TContractState) -> ContractAddress;
}

#[starknet::contract]
mod PriceOracle {
    use starknet::ContractAddress;
    use starknet::get_block_timestamp;
    use starknet::get_caller_address;
    use zeroable::Zeroable;
    use super::DataType;
    use super::PragmaPricesResponse;

    #[storage]
    struct Storage {
        owner: ContractAddress,
        prices: LegacyMap<felt252, u128>,
        decimals: LegacyMap<felt252, u32>,
        last_updated: LegacyMap<felt252, u64>,
        num_sources: LegacyMap<felt252, u32>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        PriceUpdated: PriceUpdated,
    }

    #[derive(Drop, starknet::Event)]
    struct PriceUpdated {
        #[key]
        pair_id: felt252,
        price: u128,
        decimals: u32,
        timestamp: u64,
    }

    #[constructor]
    fn constructor(ref self: ContractState, owner: ContractAddress) {
        assert(!owner.is_zero(), 'ZERO_OWNER');
        self.owner.write(owner);
    }

    #[external(v0)]
    impl PragmaImpl of super::IPragmaABI<ContractState> {
        fn get_data_median(self: @ContractState, data_type: DataType) -> PragmaPricesResponse {
            let (pair_id, expiration_timestamp) = match data_type {
                DataType::SpotEntry(pair_id) => (pair_id, Option::None(())),
                DataType::FutureEntry(future) => {
                    let (pair_id, expiry) = future;
                    (pair_id, Option::Some(expiry))
                },
                DataType::GenericEntry(key) => (key, Option::None(())),
            };
            PragmaPricesResponse {
                price: self.prices.read(pair_id),
                decimals: self.decimals.read(pair_id),
                last_updated_timestamp: self.last_updated.read(pair_id),
                num_sources_aggregated: self.num_sources.read(pair_id),
                expiration_timestamp,
            }
        }
    }

    #[external(v0)]
    impl AdminImpl of super::IPriceOracleAdmin<ContractState> {
        fn set_price(ref self: ContractState, pair_id: felt252, price: u128, decimals: u32) {
            assert(get_caller_address() == self.owner.read(), 'ONLY_OWNER');
            let timestamp = get_block_timestamp();
            self.prices.write(pair_id, price);
            self.decimals.write(pair_id, decimals);
            self.last_updated.write(pair_id, timestamp);
            self.num_sources.write(pair_id, 1_u32);
            self.emit(Event::PriceUpdated(PriceUpdated { pair_id, price, decimals, timestamp }));
        }

        fn get_owner(self: @ContractState) -> ContractAddress {
            self.owner.read()
        }
    }
}
