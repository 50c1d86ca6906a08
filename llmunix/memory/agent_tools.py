"""The memory agents use during a run: MemorySearch (archival memory: every tier, ranked, as
`llmunix memory search`) and MemoryWrite (core memory, see memory/core.py). Both runtimes offer
them; the session runs them through the policy like any other tool. Every call is a trace
step; a core-memory edit lands in the run's commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmunix.memory import core
from llmunix.tools.result import ToolResult
from llmunix.workspace.layout import Project, Workspace, relative_path

NAMES = ("MemorySearch", "MemoryWrite")
MAX_HITS = 20

SCHEMAS: dict[str, dict] = {
    "MemorySearch": {
        "type": "object",
        "description": "Search long-term memory: past runs, learned traces, proven patterns and "
                       "the component library, ranked by relevance.",
        "properties": {
            "query": {"type": "string", "description": "Words to look for."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_HITS,
                      "description": "At most this many entries (default 5)."},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    "MemoryWrite": {
        "type": "object",
        "description": "Edit core memory, the notes pinned into every agent's system prompt in "
                       "later runs: append to or replace one section. Keep it short and lasting "
                       "(conventions, facts about the project, preferences), not a log.",
        "properties": {
            "section": {"type": "string", "description": "The section's heading, e.g. "
                                                         "`Conventions`."},
            "content": {"type": "string", "description": "Markdown to append, or the section's "
                                                         "new text (empty removes it)."},
            "mode": {"type": "string", "enum": ["append", "replace"],
                     "description": "append (default) or replace the section."},
            "scope": {"type": "string", "enum": ["project", "system"],
                      "description": "project (default): this project's core memory; system: "
                                     "the one every project shares."},
        },
        "required": ["section", "content"],
        "additionalProperties": False,
    },
}


@dataclass
class AgentMemory:
    """One run's access to memory: its workspace and project, the core-memory limit, and the
    trace being written (left out of search results: the run knows its own goal)."""

    ws: Workspace
    project: Project
    limit_tokens: int = 1024
    exclude: str = ""  # workspace-relative path of the running trace
    changed: set[Path] = field(default_factory=set)

    @property
    def project_core(self) -> Path:
        return self.project.root / "memory" / core.CORE_FILE

    @property
    def system_core(self) -> Path:
        return self.ws.system_dir / core.CORE_FILE

    def blocks(self) -> list[core.CoreBlock]:
        return [core.load(self.system_core, "system", self._rel(self.system_core)),
                core.load(self.project_core, "project", self._rel(self.project_core))]

    def pinned(self) -> str:
        """The core-memory block of every agent's system prompt ("" when empty)."""
        return core.render(self.blocks())

    def _rel(self, path: Path) -> str:
        return relative_path(path, self.ws.root)

    def run(self, name: str, args: dict) -> ToolResult:
        if not isinstance(args, dict):
            return ToolResult(f"{name}: the arguments must be a JSON object", is_error=True)
        try:
            if name == "MemorySearch":
                return self._search(args)
            return self._write(args)
        except core.CoreMemoryError as exc:
            return ToolResult(exc.message, is_error=True)

    def _search(self, args: dict) -> ToolResult:
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolResult("MemorySearch: `query` must be some words", is_error=True)
        limit = args.get("limit", 5)
        if isinstance(limit, str) and limit.isdigit():
            limit = int(limit)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return ToolResult("MemorySearch: `limit` must be a positive integer", is_error=True)
        from llmunix.memory.index import search

        hits = [h for h in search(self.ws, query, project=self.project.name,
                                  limit=min(limit, MAX_HITS) + 1) if h.path != self.exclude]
        hits = hits[:min(limit, MAX_HITS)]
        if not hits:
            return ToolResult(f"no entry in memory matches {query!r}")
        lines = []
        for h in hits:
            where = h.path if h.line <= 1 else f"{h.path}:{h.line}"
            lines.append(f"{h.tier} {h.score:.3f} {where}\n    {h.context}")
        return ToolResult("\n".join(lines))

    def _write(self, args: dict) -> ToolResult:
        scope = args.get("scope", "project") or "project"
        if scope not in ("project", "system"):
            return ToolResult("MemoryWrite: `scope` must be project or system", is_error=True)
        for key in ("section", "content"):
            if not isinstance(args.get(key), str):
                return ToolResult(f"MemoryWrite: `{key}` must be a string", is_error=True)
        path = self.project_core if scope == "project" else self.system_core
        block = core.load(path, scope, self._rel(path))
        message = core.write(block, args["section"], args.get("mode", "append") or "append",
                             args["content"], self.limit_tokens, self.ws.root)
        self.changed.add(path)
        return ToolResult(message)


def definition(name: str) -> tuple[str, dict]:
    """(description, JSON Schema of the arguments) of a memory tool."""
    schema = dict(SCHEMAS[name])
    return schema.pop("description"), schema


def openai_definitions(names) -> list[dict]:
    """The memory tools among `names` as OpenAI chat-completions tool definitions."""
    out = []
    for name in names:
        if name in SCHEMAS:
            description, parameters = definition(name)
            out.append({"type": "function", "function": {
                "name": name, "description": description, "parameters": parameters}})
    return out


STATE_FILE = "state.md"  # the kernel's state (kernel/state.py), beside core memory


def kernel_files(ws: Workspace, project: Project) -> list[Path]:
    """The memory files a run itself may change (core memory, the kernel state): they go into
    the run's commit."""
    memory = project.root / "memory"
    return [memory / core.CORE_FILE, memory / STATE_FILE, ws.system_dir / core.CORE_FILE]
