"""Entry point of the embedded L1 node: `python -m devnet.l1node --port 8545`.

`rollup l1` calls `main(argv)`; code that wants the node in-process calls `serve(...)`.
The implementation lives in the `devnet.l1` package (chain, JSON-RPC codec, HTTP server).
"""

from __future__ import annotations

import sys

from devnet.l1.chain import DEFAULT_CHAIN_ID, DEV_HD_PATH, DEV_MNEMONIC, DevAccount, DevChain, dev_accounts
from devnet.l1.server import DEFAULT_HOST, DEFAULT_PORT, L1App, main, serve

__all__ = [
    "DEFAULT_CHAIN_ID",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEV_HD_PATH",
    "DEV_MNEMONIC",
    "DevAccount",
    "DevChain",
    "L1App",
    "dev_accounts",
    "main",
    "serve",
]

if __name__ == "__main__":
    from contracts.keccak import use_pysha3

    use_pysha3()
    sys.exit(main())
