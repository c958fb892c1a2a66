# pragma version ~=0.4.3
"""
@title EIP-712 Signatures
@custom:contract-name eip712
@license MIT
@notice Library module: the signing domain, the type hashes and the
        signature rule of protocol.md section 3. The domain is
        `EIP712Domain(name "DerivRollup", version "1", chainId, the
        Rollup address)`; a signature `(r, s, v)` is valid iff
        `v` is 27 or 28, `0 < r < n`, `0 < s <= n/2`, recovery succeeds
        and yields the named signer.
@dev The module holds no state: `import eip712`. The rules contracts
     pass the Rollup address (their `verifyingContract`).
"""


# @dev The secp256k1 group order and its half (highest accepted `s`).
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
SECP256K1_N_HALF: constant(uint256) = SECP256K1_N // 2


# @dev The domain type hash and the hashed name and version.
EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
EIP712_NAME_HASH: constant(bytes32) = keccak256("DerivRollup")
EIP712_VERSION_HASH: constant(bytes32) = keccak256("1")


# @dev The type hashes of the signed structures (protocol.md section 3;
#      a referenced struct type is appended, as EIP-712 encodes it).
TRANSFER_TYPEHASH: constant(bytes32) = keccak256(
    "Transfer(address from,address to,uint256 amount,uint64 nonce)"
)
WITHDRAW_TYPEHASH: constant(bytes32) = keccak256(
    "Withdraw(address from,address to,uint256 amount,uint64 nonce)"
)
ORDER_TYPEHASH: constant(bytes32) = keccak256(
    "Order(address trader,uint16 market,uint8 side,uint64 price,uint64 size,uint8 flags,uint64 expiry,uint64 salt)"
)
CANCEL_TYPEHASH: constant(bytes32) = keccak256(
    "Cancel(Order order)Order(address trader,uint16 market,uint8 side,uint64 price,uint64 size,uint8 flags,uint64 expiry,uint64 salt)"
)
PRICE_TYPEHASH: constant(bytes32) = keccak256(
    "Price(uint16 market,uint64 mark,uint64 index,uint64 timestamp)"
)
LIQUIDATE_TYPEHASH: constant(bytes32) = keccak256(
    "Liquidate(address liquidator,address account,uint16 market,uint64 size,uint64 nonce)"
)
LEG_TYPEHASH: constant(bytes32) = keccak256(
    "Leg(uint16 market,uint8 side,uint64 price,uint64 size)"
)
BUNDLE_TYPEHASH: constant(bytes32) = keccak256(
    "Bundle(address trader,Leg[] legs,uint64 expiry,uint64 salt)Leg(uint16 market,uint8 side,uint64 price,uint64 size)"
)


@internal
@view
def domain_separator(rollup: address) -> bytes32:
    """
    @dev Returns the domain separator for this chain and `rollup`.
    @param rollup The Rollup address (the `verifyingContract`).
    @return bytes32 `hashStruct(EIP712Domain)`.
    """
    return keccak256(
        abi_encode(EIP712_DOMAIN_TYPEHASH, EIP712_NAME_HASH, EIP712_VERSION_HASH, chain.id, rollup)
    )


@internal
@view
def digest(rollup: address, struct_hash: bytes32) -> bytes32:
    """
    @dev Returns the signing digest `keccak(0x19 || 0x01 || domain || struct_hash)`.
    @param rollup The Rollup address (the `verifyingContract`).
    @param struct_hash `hashStruct(message)`.
    @return bytes32 The digest a signer signs.
    """
    return keccak256(concat(b"\x19\x01", self.domain_separator(rollup), struct_hash))


@internal
@pure
def recover(digest: bytes32, r: uint256, s: uint256, v: uint256) -> address:
    """
    @dev Returns the signer of a valid, non-malleable signature `(r, s, v)`
         of `digest`, or the zero address when the signature is invalid
         (`v` not 27 or 28, `r` or `s` out of range, recovery failed).
    @param digest The signed digest.
    @param r The signature's `r`.
    @param s The signature's `s` (at most n/2).
    @param v The recovery byte, 27 or 28.
    @return address The signer (zero: no valid signature).
    """
    if v != 27 and v != 28:
        return empty(address)
    if r == 0 or r >= SECP256K1_N or s == 0 or s > SECP256K1_N_HALF:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@pure
def signed_by(digest: bytes32, r: uint256, s: uint256, v: uint256, signer: address) -> bool:
    """
    @dev Returns whether `(r, s, v)` is a valid, non-malleable signature of
         `digest` by `signer`. A failed recovery (the zero address) never
         matches, so the zero address never signs.
    @param digest The signed digest.
    @param r The signature's `r`.
    @param s The signature's `s` (at most n/2).
    @param v The recovery byte, 27 or 28.
    @param signer The address that must have signed.
    @return bool True iff the signature is valid and by `signer`.
    """
    recovered: address = self.recover(digest, r, s, v)
    return recovered != empty(address) and recovered == signer
