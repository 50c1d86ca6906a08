"""Context: what fills a model's context window and how much of it (token counts; paging).
Below kernel/ and runtimes/, which count and page through it; may import memory/ and lower
layers only."""
