"""Execution traces: the events of a run, the markdown trace written step by step and read
back, and the replayable steps taken from it. May import specs/ and lower layers."""
