"""The sequencer service and, in `sequencer.stf`, the state machine."""
