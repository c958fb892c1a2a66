"""Errors of the embedded L1, each carrying its JSON-RPC error code.

One root (`L1Error`), then one class per JSON-RPC error family, so the server maps an
exception to a response with `error.code`, `error.message` and, for reverts, `error.data`.
"""

from __future__ import annotations

# JSON-RPC 2.0 codes (https://www.jsonrpc.org/specification#error_object) and the
# Ethereum conventions on top of them (EIP-1474; geth and anvil use code 3 for reverts).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3


class L1Error(Exception):
    """Root of the embedded L1's errors: a JSON-RPC error code and a message."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        """Human-readable message, sent as `error.message`."""
        self.data = data
        """Optional `error.data` (hex string of the revert data for reverts)."""


class ParseError(L1Error):
    """The HTTP body is not valid JSON."""

    code = PARSE_ERROR


class InvalidRequest(L1Error):
    """The JSON is not a JSON-RPC 2.0 request object."""

    code = INVALID_REQUEST


class MethodNotFound(L1Error):
    """No such method on this node."""

    code = METHOD_NOT_FOUND


class InvalidParams(L1Error):
    """Wrong number or type of parameters, or a malformed hex value."""

    code = INVALID_PARAMS


class InternalError(L1Error):
    """A bug in the node; the request may be retried but probably fails again."""

    code = INTERNAL_ERROR


class ServerError(L1Error):
    """The request was understood but refused by the chain (geth's -32000 family)."""

    code = SERVER_ERROR


class TxRejected(ServerError):
    """A transaction was refused before execution (nonce, funds, gas limit, chain id)."""


class BlockNotFound(ServerError):
    """A state query named a block the chain does not have."""


class ExecutionReverted(L1Error):
    """The EVM reverted: `data` holds the revert output (e.g. an ABI-encoded Error(string))."""

    code = EXECUTION_REVERTED
