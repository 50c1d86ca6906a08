"""A goal end to end: choosing the mode, preparing the registry and runtime, running, and
committing what the run did; the model-written summaries of consolidation. May import every
layer below the CLI."""
