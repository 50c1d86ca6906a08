"""Skills during a run, the same on every runtime (progressive disclosure, as Claude Code does
it): each agent that may use skills is told their names and descriptions in its system prompt;
a skill's instructions reach the model only when it calls the `Skill` tool, which reads
SKILL.md then and lists the files beside it. From then on a skill's `allowed-tools`, if it has
any, is what that agent may call (within its own tools), enforced by the session's gate."""

from __future__ import annotations

from typing import Any

from llmunix.errors import SpecError
from llmunix.policy.gate import Decision
from llmunix.specs.models import AgentSpec, canonical_tool_name
from llmunix.specs.registry import Registry
from llmunix.specs.skills import SkillSpec, skill_body
from llmunix.tools.result import ToolResult

SKILL_TOOL = "Skill"
DESCRIPTION = ("Load a skill: its instructions (and the files it comes with) for a task that "
               "matches its description. Call it before doing such a task.")
SCHEMA = {
    "type": "object",
    "properties": {
        "skill": {"type": "string", "description": "The skill's name."},
        "args": {"type": "string", "description": "Optional arguments for the skill."},
    },
    "required": ["skill"],
    "additionalProperties": False,
}
MAX_FILES_LISTED = 50


class RunSkills:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.active: dict[str, SkillSpec] = {}  # agent -> the skill it invoked last

    def for_agent(self, agent: AgentSpec) -> dict[str, SkillSpec]:
        """The skills `agent` may invoke: its `skills:` list, else every skill (when its tools
        are not listed, or list Skill)."""
        skills = self.registry.skills
        if SKILL_TOOL in agent.disallowed_tools:
            return {}
        if agent.skills is not None:
            return {n: skills[n] for n in agent.skills if n in skills}
        if agent.tools is None or SKILL_TOOL in agent.tools:
            return {n: s for n, s in skills.items() if s.model_invocable}
        return {}

    def prompt_section(self, agent: AgentSpec) -> str:
        skills = self.for_agent(agent)
        if not skills:
            return ""
        listing = "\n".join(f"- {s.name}: {s.description}" for s in skills.values())
        return ("## Skills\n\nSkills hold instructions for particular tasks. When a task matches "
                "a skill's description, call the Skill tool with its name first; its "
                f"instructions are given to you then.\n\n{listing}")

    def check(self, agent: AgentSpec, tool: str, tool_input: Any) -> Decision | None:
        """The skills' part of the gate: None when they have nothing to say about the call."""
        if tool == SKILL_TOOL:
            name = tool_input.get("skill") if isinstance(tool_input, dict) else None
            if not self.for_agent(agent):
                return Decision(False, "Skill refused: this agent may not use skills")
            if name not in self.for_agent(agent):
                known = ", ".join(sorted(self.for_agent(agent)))
                return Decision(False, f"Skill refused: no skill {name!r} for this agent "
                                       f"(its skills: {known})")
            return Decision(True)
        skill = self.active.get(agent.name)
        if skill is None or skill.allowed_tools is None:
            return None
        allowed = {canonical_tool_name(t) for t in skill.allowed_tools}
        if canonical_tool_name(tool) not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            return Decision(False, f"{tool} refused: the active skill '{skill.name}' allows "
                                   f"only {names} (its allowed-tools)")
        return None

    def activate(self, agent_name: str, tool_input: Any) -> None:
        name = tool_input.get("skill") if isinstance(tool_input, dict) else None
        skill = self.registry.skills.get(str(name))
        if skill is not None:
            self.active[agent_name] = skill

    def invoke(self, agent_name: str | None, tool_input: dict) -> ToolResult:
        """The skill's instructions, read now, and the files beside them."""
        skill = self.registry.skills.get(str(tool_input.get("skill")))
        if skill is None:
            return ToolResult(f"no skill {tool_input.get('skill')!r}", is_error=True)
        try:
            body = skill_body(skill)
        except SpecError as exc:
            return ToolResult(exc.message, is_error=True)
        if agent_name is not None:
            self.activate(agent_name, tool_input)
        files = sorted(str(p.relative_to(skill.folder)) for p in skill.folder.rglob("*")
                       if p.is_file() and p != skill.path)[:MAX_FILES_LISTED]
        parts = [f"Skill '{skill.name}' (base directory: {skill.folder})", body]
        if files:
            parts.append("Files of this skill (Read them by their full path when needed):\n"
                         + "\n".join(f"- {skill.folder / f}" for f in files))
        if tool_input.get("args"):
            parts.append(f"ARGUMENTS: {tool_input['args']}")
        if skill.allowed_tools is not None:
            parts.append("While you work on this skill you may use only: "
                         + ", ".join(skill.allowed_tools))
        return ToolResult("\n\n".join(parts))
