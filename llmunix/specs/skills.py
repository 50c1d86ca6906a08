"""Skills and slash commands, in Claude Code's formats.

A skill is a folder holding `SKILL.md` (frontmatter `name`, `description`, `allowed-tools`, ...;
the body is the instructions) and any files beside it. Only the name and description are read
into the registry: the body is read again when a model invokes the skill (progressive
disclosure), so a skill's size costs nothing until it is used.

A slash command is a markdown template (`.claude/commands/**/*.md`, `commands/**/*.md`):
frontmatter `description`, `argument-hint`, `allowed-tools`, `model`; the body is the prompt,
with `$ARGUMENTS` and `$1`...`$9` filled in by `llmunix run "/name args"`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import SpecError
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.document import read_document
from llmunix.specs.models import AGENT_NAME_RE
from llmunix.specs.reader import _Reader

SKILL_FILE = "SKILL.md"
SKILL_KEYS = frozenset({
    "name", "description", "allowed-tools", "model", "license", "metadata", "version",
    "argument-hint", "disable-model-invocation", "user-invocable", "when_to_use",
    "compatibility", "author", "tags", "context", "agent", "hooks",
})
COMMAND_KEYS = frozenset({
    "name", "description", "argument-hint", "allowed-tools", "model", "disable-model-invocation",
})
IGNORED_SKILL_KEYS = {
    "hooks": "llmunix's own policy gates every call; Claude Code hooks are not run",
    "context": "the skill runs in the agent that invokes it",
    "agent": "the skill runs in the agent that invokes it",
}


@dataclass(frozen=True, kw_only=True)
class SkillSpec:
    name: str
    description: str
    path: Path  # its SKILL.md
    allowed_tools: tuple[str, ...] | None = None  # while active, only these (Claude Code names)
    model_invocable: bool = True  # disable-model-invocation: true hides it from models
    scope: str = "system"
    content_hash: str = ""

    @property
    def folder(self) -> Path:
        return self.path.parent


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    name: str
    description: str
    template: str
    path: Path
    namespace: str = ""  # the sub-folder, as Claude Code shows it (`frontend` for frontend/x.md)
    argument_hint: str = ""
    allowed_tools: tuple[str, ...] | None = None
    model: str | None = None
    scope: str = "system"
    content_hash: str = ""


class _SkillReader(_Reader):
    name_re = AGENT_NAME_RE
    name_chars = "letters, digits, '-', '_' and '.'"

    def read_skill(self) -> tuple[SkillSpec | None, list[Diagnostic]]:
        if not self.doc.has_frontmatter:
            self.error("no frontmatter: SKILL.md starts with '---', name and description, '---'")
            return None, self.problems
        self.unknown_keys(SKILL_KEYS)
        for key, why in IGNORED_SKILL_KEYS.items():
            if key in self.meta:
                self.warn(f"'{key}' is a Claude Code setting llmunix does not apply: {why}",
                          key=key)
        name = self.name(("name",), ()) if "name" in self.meta else \
            self._valid_name(self.doc.path.parent.name, None)
        description = self.description()
        tools = self.tool_list("allowed-tools")
        if self.failed() or name is None:
            return None, self.problems
        return SkillSpec(
            name=name, description=description, path=self.doc.path, allowed_tools=tools,
            model_invocable=self.meta.get("disable-model-invocation") is not True,
            scope=self.scope, content_hash=self.doc.content_hash,
        ), self.problems

    def read_command(self, folder: Path) -> tuple[CommandSpec | None, list[Diagnostic]]:
        self.unknown_keys(COMMAND_KEYS)
        rel = self.doc.path.relative_to(folder) if folder in self.doc.path.parents else \
            Path(self.doc.path.name)
        name = self._valid_name(str(self.meta.get("name") or rel.stem), "name" if "name" in
                                self.meta else None)
        body = self.doc.body.strip()
        if not body:
            self.error("empty body: a command's body is the prompt it expands to")
        value = self.meta.get("description")
        description = " ".join(value.split()) if isinstance(value, str) else \
            next((ln.strip() for ln in body.splitlines() if ln.strip()), "")[:200]
        hint = self.meta.get("argument-hint", "")
        model = self.meta.get("model")
        if self.failed() or name is None:
            return None, self.problems
        return CommandSpec(
            name=name, description=description, template=body, path=self.doc.path,
            namespace="/".join(rel.parent.parts), argument_hint=str(hint or ""),
            allowed_tools=self.tool_list("allowed-tools"),
            model=model if isinstance(model, str) and model != "inherit" else None,
            scope=self.scope, content_hash=self.doc.content_hash,
        ), self.problems


def load_skill(path: Path, scope: str) -> tuple[SkillSpec | None, list[Diagnostic]]:
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    return _SkillReader(doc, scope).read_skill()


def load_command(path: Path, scope: str, folder: Path) -> tuple[CommandSpec | None,
                                                                list[Diagnostic]]:
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    return _SkillReader(doc, scope).read_command(folder)


def skill_body(skill: SkillSpec) -> str:
    """The skill's instructions, read now (a skill is read in full only when invoked)."""
    try:
        return read_document(skill.path).body.strip()
    except SpecError as exc:
        raise SpecError(f"skill '{skill.name}' cannot be read: {exc.message}",
                        path=skill.path) from exc


_POSITIONAL = re.compile(r"\$(\d)")


def expand_command(command: CommandSpec, arguments: str) -> str:
    """The prompt a command expands to: `$ARGUMENTS` is everything after the name, `$1`..`$9`
    its words (quotes group words). With neither placeholder in the template, the arguments are
    appended, as Claude Code does."""
    try:
        words = shlex.split(arguments)
    except ValueError:
        words = arguments.split()
    text = command.template
    uses = "$ARGUMENTS" in text or _POSITIONAL.search(text) is not None
    text = text.replace("$ARGUMENTS", arguments)
    text = _POSITIONAL.sub(lambda m: words[int(m.group(1)) - 1]
                           if 0 < int(m.group(1)) <= len(words) else "", text)
    if arguments and not uses:
        text = f"{text}\n\nARGUMENTS: {arguments}"
    return text
