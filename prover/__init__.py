"""The watcher, the fraud-proof builder and the challenger."""
