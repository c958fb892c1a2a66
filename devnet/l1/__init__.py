"""The embedded L1: a JSON-RPC node over py-evm (eth-tester's PyEVMBackend), automine on.

`chain` holds the EVM and anvil-style dev methods, `rpc` the JSON-RPC 2.0 codec and method
table, `server` the uvicorn/ASGI front with health and metrics. `devnet.l1node` is the entry.
"""
