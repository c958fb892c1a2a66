"""eth_estimateGas on the embedded L1: a limit that succeeds, at most about 2% above the least one.

The chain runs in this process (`DevChain`); the least limit comes from py-evm's exact binary
search on the same state, which the estimator replaced for speed.
"""

from __future__ import annotations

from typing import Any

import pytest
import rlp
import vyper
from eth.estimators.gas import binary_gas_search_exact
from eth_utils import keccak
from web3 import Web3

from devnet.l1.chain import BLOCK_GAS_LIMIT, ESTIMATE_ERROR_RATIO, DevChain, TxRequest
from devnet.l1.errors import ExecutionReverted

SUCCESS = b"\x01"
"""A receipt's status byte (its `state_root` field since Byzantium) when the transaction succeeded."""

# `spend` makes an external call that forwards gas (so the 63/64 rule applies), writes storage
# and clears it again (a refund): the cases where the gas a run consumes is not a limit that works.
SOURCE = """
# pragma version ^0.4.0
interface Burner:
    def burn(rounds: uint256): nonpayable

slots: public(HashMap[uint256, uint256])

@external
def burn(rounds: uint256):
    acc: bytes32 = empty(bytes32)
    for i: uint256 in range(rounds, bound=500):
        acc = keccak256(concat(acc, convert(i, bytes32)))
    self.slots[rounds] = convert(acc, uint256) | 1

@external
def spend(rounds: uint256, clear: uint256):
    extcall Burner(self).burn(rounds)
    for i: uint256 in range(clear, bound=50):
        self.slots[1000 + i] = 1
    for i: uint256 in range(clear, bound=50):
        self.slots[1000 + i] = 0

@external
def fail():
    raise "estimate: always fails"
"""


@pytest.fixture(scope="module")
def deployed() -> tuple[DevChain, Any, bytes]:
    chain = DevChain()
    out = vyper.compile_code(SOURCE, output_formats=["abi", "bytecode"])
    sender = chain.accounts[0]
    nonce = chain.nonce(sender)
    view = chain.receipt(
        chain.send_transaction(TxRequest(sender=sender, data=bytes.fromhex(out["bytecode"][2:])))
    )
    assert view is not None and view.receipt.state_root == SUCCESS
    address = keccak(rlp.encode([sender, nonce]))[12:]  # the created contract's address
    assert chain.code(address)
    return chain, Web3().eth.contract(abi=out["abi"]), address


def _least_limit(chain: DevChain, req: TxRequest) -> int:
    state = chain._call_state("latest")
    return int(binary_gas_search_exact(state, chain._spoof(req, state, BLOCK_GAS_LIMIT)))


@pytest.mark.parametrize(("rounds", "clear"), [(0, 0), (40, 0), (400, 0), (40, 30), (400, 30)])
def test_estimate_gas__calls_and_refunds__succeeds_within_error_ratio(
    deployed: tuple[DevChain, Any, bytes], rounds: int, clear: int
) -> None:
    chain, contract, address = deployed
    sender = chain.accounts[1]
    req = TxRequest(
        sender=sender, to=address, data=bytes.fromhex(contract.encode_abi("spend", [rounds, clear])[2:])
    )
    least = _least_limit(chain, req)
    estimate = chain.estimate_gas(req)
    assert least <= estimate and estimate * (1 - ESTIMATE_ERROR_RATIO) <= least
    # one gas short of the least limit it fails (and changes nothing); with the estimate it succeeds
    short = chain.receipt(
        chain.send_transaction(TxRequest(sender=sender, to=address, data=req.data, gas=least - 1))
    )
    assert short is not None and short.receipt.state_root != SUCCESS
    ok = chain.receipt(
        chain.send_transaction(TxRequest(sender=sender, to=address, data=req.data, gas=estimate))
    )
    assert ok is not None and ok.receipt.state_root == SUCCESS


def test_estimate_gas__always_reverts__reason_raised(deployed: tuple[DevChain, Any, bytes]) -> None:
    chain, contract, address = deployed
    req = TxRequest(
        sender=chain.accounts[1], to=address, data=bytes.fromhex(contract.encode_abi("fail", [])[2:])
    )
    with pytest.raises(ExecutionReverted, match="estimate: always fails"):
        chain.estimate_gas(req)
