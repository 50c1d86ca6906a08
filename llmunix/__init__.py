"""llmunix: an operating system for LLM agents, with markdown programs and git-versioned memory."""

__version__ = "0.1.0"
