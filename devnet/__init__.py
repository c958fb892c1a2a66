"""The embedded L1, deployment, the orchestrator and the rollup CLI."""
