"""The state transition function: pure, deterministic, integers only (docs/protocol.md 2-4)."""
