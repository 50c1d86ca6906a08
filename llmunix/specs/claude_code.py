"""What llmunix knows of Claude Code: its built-in tools (current and older names), the keys of its
sub-agent frontmatter, and what llmunix does with each. Data only, so every layer can ask."""

from __future__ import annotations

# Every built-in tool name Claude Code has used, as users write them in `tools:` lists. A name
# here is never an "unknown tool" error; one llmunix does not implement is a warning at boot and
# a refusal, with the reason, if a model calls it.
CLAUDE_CODE_TOOLS = frozenset(
    {
        # files, search, shell
        "Read", "Write", "Edit", "MultiEdit", "Glob", "Grep", "LS", "Bash", "BashOutput",
        "KillShell", "PowerShell", "NotebookEdit", "NotebookRead", "LSP", "Monitor",
        # web
        "WebFetch", "WebSearch", "WebBrowser",
        # agents, teams, tasks, planning
        "Agent", "ListAgents", "SendMessage", "TeamCreate", "TeamDelete", "TaskCreate",
        "TaskUpdate", "TaskList", "TaskGet", "TaskOutput", "TaskStop", "TodoWrite", "TodoRead",
        "EnterPlanMode", "ExitPlanMode", "AskUserQuestion", "ReportFindings", "Workflow",
        "Brief",
        # skills, commands, tool discovery, MCP resources
        "Skill", "SlashCommand", "ToolSearch", "ListMcpResourcesTool", "ReadMcpResourceTool",
        # sessions, worktrees, schedules, artifacts
        "EnterWorktree", "ExitWorktree", "CronCreate", "CronDelete", "CronList",
        "ScheduleWakeup", "RemoteTrigger", "Artifact", "ArtifactComments", "ArtifactData",
        "ArtifactCheck",
    }
)
TOOL_ALIASES = {"Task": "Agent"}  # Claude Code's older names

# The built-ins llmunix runs on at least one runtime (the claude runtime adds the CLI's web,
# notebook and todo tools; see each runtime's OFFERED set for what it offers itself).
IMPLEMENTED_TOOLS = frozenset(
    {"Read", "Write", "Edit", "Glob", "Grep", "Bash", "Agent", "Skill", "WebFetch", "WebSearch",
     "TodoWrite", "NotebookEdit"}
)

# Sub-agent frontmatter keys llmunix honours (README, "Agent specs"), and those it reads but does
# not act on, with what Claude Code uses them for: each is named in a warning, never dropped
# silently. `color` is shown by `agents show`.
HONOURED_AGENT_KEYS = frozenset(
    {"name", "description", "tools", "disallowedTools", "model", "permissionMode", "maxTurns",
     "skills", "mcpServers", "color", "allowed-tools"}
)
IGNORED_AGENT_KEYS = {
    "hooks": "llmunix's own policy gates every tool call; Claude Code hooks are not run",
    "memory": "Claude Code's persistent agent memory is not used; llmunix memory is per project",
    "background": "sub-agents run in the foreground so the orchestrator gets their results",
    "effort": "the model's effort level is not set by llmunix",
    "isolation": "runs work in the project's workspace, not in a git worktree",
    "initialPrompt": "the goal or the delegation prompt is the first message",
    "disabled": "",
}
PERMISSION_MODES = ("default", "acceptEdits", "dontAsk", "bypassPermissions", "plan", "auto")


def unimplemented_reason(tool: str) -> str:
    """Why a known Claude Code tool is refused."""
    return (f"{tool} refused: it is a Claude Code tool llmunix does not implement; use the tools "
            "you were given")
