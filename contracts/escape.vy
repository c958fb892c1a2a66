# pragma version ~=0.4.3
"""
@title Exit Equity
@custom:contract-name escape
@license MIT
@notice Library module: what an account is worth in the frozen state
        (protocol.md section 12): its funding settled at each market's
        funding index, its positions closed at each market's mark, i.e.
        `equity(settle(A))` of the margin module, the rules contracts'
        own definitions (section 3, "Common rules").
@dev The module holds no state: `import escape`. The values come from
     witnesses checked against a final root, so they have their leaves'
     shapes; a value of the wrong shape reverts with "verifier: bad
     witness" (`accounts.decode`, `markets.count`, `margin.settle`).
"""

import accounts
import margin
import markets


# @dev Longest encoded leaf value.
MAX_VALUE_BYTES: constant(uint256) = 2048


@internal
@pure
def equity(account_value: Bytes[MAX_VALUE_BYTES], markets_value: Bytes[MAX_VALUE_BYTES]) -> int256:
    """
    @dev Returns `equity(settle(A))`: the collateral after funding plus
         `size * mark - open_notional` over the positions.
    @param account_value The Account leaf value (empty = absent: 0).
    @param markets_value The Markets leaf value (empty = no market).
    @return int256 The equity (negative for an account in debt).
    """
    markets.count(markets_value)
    a: accounts.Account = margin.settle(accounts.decode(account_value), markets_value)
    value: int256 = 0
    imr: int256 = 0
    mmr: int256 = 0
    value, imr, mmr = margin.risk(a, markets_value)
    return value
