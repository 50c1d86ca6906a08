"""The workspace: its layout on disk (Workspace, Project), llmunix.toml, and `llmunix init`.
The lowest layer after errors: it may import only llmunix.errors."""
