"""Context: what fills a model's context window and how much of it (token counts), its size
(window), paging it out and back (pager, summary, recall; loop wires a pager to an agent loop).
Below kernel/ and runtimes/, which count and page through it; may import memory/ and lower."""
