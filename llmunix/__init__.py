"""llmunix: an operating system for LLM agents, with markdown programs and git-versioned memory.

Packages, lowest layer first (each may import only from itself and the layers below it; see
docs/architecture.md and tests/test_layers.py): errors, workspace, policy, specs, trace, tools,
memory, kernel, runtimes, run, cli."""

__version__ = "0.1.0"
