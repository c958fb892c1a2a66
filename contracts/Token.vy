# pragma version ~=0.4.3
"""
@title Devnet Collateral Token
@custom:contract-name Token
@license MIT
@notice A plain ERC-20 with 6 decimals (like USDC) that the devnet
        deploys as the rollup's collateral. Only the owner (the
        deployer) can mint.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed


# @dev The token's decimals, as USDC.
DECIMALS: constant(uint8) = 6


# EVENTS #


event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


# STORAGE #


# @dev The token's name.
name: public(String[32])


# @dev The token's symbol.
symbol: public(String[8])


# @dev Token balance of each account.
balanceOf: public(HashMap[address, uint256])


# @dev Allowance of `spender` over the tokens of `owner`.
allowance: public(HashMap[address, HashMap[address, uint256]])


# @dev The amount of tokens in existence.
totalSupply: public(uint256)


# @dev The only account allowed to mint.
owner: public(address)


@deploy
def __init__(name_: String[32], symbol_: String[8]):
    """
    @dev Sets the name and symbol; the deployer becomes the owner.
    @param name_ The token name.
    @param symbol_ The token symbol.
    """
    self.name = name_
    self.symbol = symbol_
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


@external
@view
def decimals() -> uint8:
    """
    @dev Returns the decimals of the token (6).
    @return uint8 The decimals.
    """
    return DECIMALS


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` tokens from the caller to `to`.
    @param to The receiver.
    @param amount The amount.
    @return bool Always True (failures revert).
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Sets `amount` as the allowance of `spender` over the caller's tokens.
    @param spender The spender.
    @param amount The allowance.
    @return bool Always True.
    """
    assert spender != empty(address), "token: approve to the zero address"
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` tokens from `owner` to `to` using the caller's
         allowance (an allowance of max uint256 is never decreased).
    @param owner The account debited.
    @param to The receiver.
    @param amount The amount.
    @return bool Always True (failures revert).
    """
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "token: insufficient allowance"
        self.allowance[owner][msg.sender] = allowed - amount
        log Approval(owner=owner, spender=msg.sender, value=allowed - amount)
    self._transfer(owner, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @dev Creates `amount` tokens for `to`. Owner only.
    @param to The receiver.
    @param amount The amount.
    """
    assert msg.sender == self.owner, "token: not owner"
    assert to != empty(address), "token: mint to the zero address"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def transfer_ownership(new_owner: address):
    """
    @dev Hands the minting right to `new_owner`. Owner only.
    @param new_owner The new owner.
    """
    assert msg.sender == self.owner, "token: not owner"
    assert new_owner != empty(address), "token: new owner is the zero address"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves `amount` tokens from `owner` to `to`.
    """
    assert to != empty(address), "token: transfer to the zero address"
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "token: insufficient balance"
    self.balanceOf[owner] = balance - amount
    self.balanceOf[to] += amount
    log Transfer(sender=owner, receiver=to, value=amount)
