"""The policy gate: which tool calls an agent may make, with which paths and which commands.
May import workspace/ and errors; it knows nothing of specs, runs or runtimes."""
