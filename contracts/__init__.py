"""Vyper sources, their cached build, typed web3 bindings, the L1 adapter and the deployment record."""
