"""The sequencer's HTTP API (FastAPI: REST and a WebSocket; the OpenAPI document is the contract).

- `app`: the application factory (routers, exception handlers, body limit) and the HTTP protocol
  class the server runs;
- `routes/`: one module per resource, thin; `deps`: what they depend on (the node, `NodeDep`);
- `schemas`, `order_schemas`: request and response bodies, apart from the state machine's types;
- `answers`: the hot endpoints' answers, built once as JSON bytes for every path that serves them;
- `errors`: the one error body and the code -> HTTP status mapping; `body`: the body limit;
- `direct`: single orders and cancels answered inside the HTTP protocol (see there why).
"""
