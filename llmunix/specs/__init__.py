"""Agent and tool specs: markdown documents, their frontmatter models, the registry of scopes,
its cache, and the live (hot-reload) registry. May import policy/, workspace/ and errors."""
