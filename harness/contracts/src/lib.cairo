//! Stand-in Starknet contracts for VOLTA Lightning: the VUSD token, the Lightning minting vault
//! and a Pragma-compatible price oracle. Written for Cairo 2.1.0; compiled by build.py.

mod price_oracle;
mod vault;
mod vusd;
