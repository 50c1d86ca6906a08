"""llmunix's own Read, Write, Edit, Glob, Grep and Bash, with Claude Code's names and inputs:
one module per tool family, dispatch.py validates arguments and runs them. May import tools/,
policy/ and lower layers."""

from llmunix.tools.builtin.common import MAX_OUTPUT_CHARS, MAX_READ_CHARS
from llmunix.tools.builtin.dispatch import BUILTIN_SCHEMAS, openai_tools, run_builtin

__all__ = ["BUILTIN_SCHEMAS", "MAX_OUTPUT_CHARS", "MAX_READ_CHARS", "openai_tools", "run_builtin"]
