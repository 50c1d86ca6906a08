"""What agent and tool files share when read: the frontmatter fields, their lines, and the problems
found."""

from __future__ import annotations

from llmunix.policy.rules import RuleError, parse_rule, split_entries
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.document import Document
from llmunix.specs.models import NAME_RE, canonical_tool_name


class _Reader:
    name_re = NAME_RE
    name_chars = "letters, digits, '-' and '_'"

    def __init__(self, doc: Document, scope: str) -> None:
        self.doc = doc
        self.scope = scope
        self.meta = doc.meta
        self.problems: list[Diagnostic] = []
        self.rules: dict[str, tuple] = {}  # tool-list key -> its permission rules
        for line, key in doc.lenient:
            self.problems.append(Diagnostic(
                "warning", str(doc.path),
                f"the value of '{key}' is not valid YAML as written (an unquoted ': ' or "
                "similar); read as plain text, as Claude Code reads it",
                line, key, 'quote the value ("...") so strict YAML tools read it too'))

    def error(self, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        self._add("error", message, key, hint)

    def warn(self, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        self._add("warning", message, key, hint)

    def _add(self, severity, message, key, hint) -> None:
        line = self.doc.line_of(key) if key else None
        field_name = key.split(".")[0] if key else None
        self.problems.append(
            Diagnostic(severity, str(self.doc.path), message, line, field_name, hint)
        )

    def check_types(self, types: dict[str, str]) -> bool:
        """Report every known key of the wrong type; True when all are right."""
        from llmunix.specs.keytypes import type_errors

        errors = type_errors(self.meta, types)
        for key, message in errors:
            self.error(message, key=key)
        return not errors

    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def unknown_keys(self, known: frozenset[str]) -> None:
        for key in self.meta:
            if key not in known:
                self.warn(f"unknown key '{key}' is ignored", key=str(key))

    def name(self, keys: tuple[str, ...], fallbacks: tuple[str, ...] = ()) -> str | None:
        """The first of `keys`; else a fallback key or the file name, with a warning."""
        for key in keys + fallbacks:
            value = self.meta.get(key)
            if value is None:
                continue
            if key in fallbacks:
                self.warn(f"no 'name' key; using '{key}' ({value}) as the name", key=key)
            return self._valid_name(str(value), key)
        stem = self.doc.path.stem
        self.warn(
            f"no 'name' key; using the file name '{stem}' as the name",
            hint="add 'name: <name>' to the frontmatter",
        )
        return self._valid_name(stem, None)

    def _valid_name(self, name: str, key: str | None) -> str | None:
        if self.name_re.match(name):
            return name
        self.error(f"invalid name {name!r}: use {self.name_chars} (at most 64, no spaces)",
                   key=key)
        return None

    def description(self) -> str:
        value = self.meta.get("description")
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
        if value is not None and not isinstance(value, str):
            self.error("description must be text", key="description")
            return ""
        lines = (ln.strip() for ln in self.doc.body.splitlines())
        first = next((ln for ln in lines if ln and not ln.startswith(("#", "**", "```"))), "")
        self.warn(
            "no 'description'; using the first line of the body",
            hint="add 'description: <when to use it>' so orchestrators know when to delegate",
        )
        return first[:200]

    def tool_list(self, key: str) -> tuple[str, ...] | None:
        value = self.meta.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            items = split_entries(value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item.strip() for item in value]
        else:
            self.error(f"'{key}' must be a list of tool names or a comma-separated string", key=key)
            return None
        # Claude Code permission rules such as `Bash(git status:*)`: the tool is offered, and
        # policy/rules.py holds it to the rule (never widened to the whole tool).
        names, rules = [], []
        for item in items:
            if not item:
                continue
            try:
                name, rule = parse_rule(item)
            except RuleError as exc:
                self.error(str(exc), key=key, hint="see README, 'Permission rules'")
                continue
            names.append(canonical_tool_name(name))
            if rule is not None:
                rules.append(rule)
        self.rules[key] = tuple(rules)
        return tuple(dict.fromkeys(names))
