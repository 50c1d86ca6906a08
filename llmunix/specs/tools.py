"""Tool files: command, python and prompt tools, their input schemas, and the legacy forms."""

from __future__ import annotations

import ast
import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

from llmunix.errors import SpecError
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.dialects import with_bold_fields
from llmunix.specs.document import Document, read_document
from llmunix.specs.keytypes import TOOL_TYPES
from llmunix.specs.models import DEFAULT_TOOL_TIMEOUT_S, SCHEMA_TYPES, TOOL_KEYS, ToolSpec
from llmunix.specs.reader import _Reader

# ---------------------------------------------------------------- tools

_FENCE_RE = re.compile(r"^```[ \t]*(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_tool(path: Path, scope: str) -> tuple[ToolSpec | None, list[Diagnostic]]:
    """Parse one tool file. Returns the spec (None when broken) and every problem found."""
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    return _ToolReader(with_bold_fields(doc) or doc, scope).read()


def parse_tool(doc: Document, scope: str) -> tuple[ToolSpec | None, list[Diagnostic]]:
    """A tool from a document already read (a crystallized tool is checked before it is kept)."""
    return _ToolReader(doc, scope).read()


def fenced_blocks(body: str) -> list[tuple[str, str, int]]:
    """(language, code, line offset of the code within the body) for each fenced block."""
    return [
        (m.group(1).lower(), m.group(2), body.count("\n", 0, m.start(2)))
        for m in _FENCE_RE.finditer(body)
    ]


def _schema_problem(schema: Any) -> str | None:
    """The commonest broken JSON Schemas, found without loading a validator: an unknown
    `type` or a `pattern` that is not a regular expression."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        for k in kinds:
            if k not in (*SCHEMA_TYPES, "null"):
                return f"unknown type {k!r} (use one of: {', '.join(SCHEMA_TYPES)}, null)"
        pattern = node.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern) if isinstance(pattern, str) else None
            except re.error as exc:
                return f"pattern {pattern!r} is not a regular expression ({exc})"
            if not isinstance(pattern, str):
                return "a pattern must be text"
        for k, v in node.items():
            if k in _DATA_KEYWORDS:
                continue
            if k in _SCHEMA_MAPS and isinstance(v, dict):
                stack.extend(v.values())  # keys there are names, not keywords
            elif isinstance(v, (dict, list)):
                stack.append(v)
    return None


_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "description", "title"})


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return "too complex (nested too deeply)"
    return str(exc) or type(exc).__name__


class _ToolReader(_Reader):
    def read(self) -> tuple[ToolSpec | None, list[Diagnostic]]:
        meta = self.meta
        legacy_sh = any(lang in ("sh", "bash", "shell") for lang, _, _ in
                        fenced_blocks(self.doc.body))
        if not self.doc.has_frontmatter and not meta and not legacy_sh:
            self.error("no frontmatter: a tool file starts with '---', its keys, and '---'",
                       hint="or, in the legacy form, a ```sh block (with a ```json input "
                            "schema); see README, 'Tool specs'")
            return None, self.problems
        self.unknown_keys(TOOL_KEYS)
        if not self.check_types(TOOL_TYPES):
            return None, self.problems
        name = self.name(("name", "tool_name"))
        description = self.description()
        blocks = fenced_blocks(self.doc.body)
        schema = self._schema(blocks)
        timeout = self._timeout()
        fields: dict[str, Any] = {}
        if "command" in meta and "python" in meta:
            self.error("a tool has either 'command' or 'python', not both", key="python")
        elif "command" in meta:
            fields = {"kind": "command", "command": self._command(schema)}
        elif "python" in meta:
            fields = {"kind": "python", **self._python(blocks)}
        elif sh := next((c for lang, c, _ in blocks if lang in ("sh", "bash", "shell")), None):
            fields = {"kind": "command", "shell_script": sh}
        else:
            fields = {"kind": "prompt"}
            if not self.doc.body.strip():
                self.error(
                    "empty body: a prompt tool's body holds the instructions the model follows",
                    hint="or add 'command:' or 'python:' to make it an executable tool",
                )
        if self.failed() or name is None or schema is None:
            return None, self.problems
        spec = ToolSpec(
            name=name,
            description=description,
            input_schema=schema,
            timeout_s=timeout,
            deterministic=self._deterministic(),
            body=self.doc.body.strip(),
            path=self.doc.path,
            scope=self.scope,
            content_hash=self.doc.content_hash,
            **fields,
        )
        return spec, self.problems

    def _deterministic(self) -> bool:
        value = self.meta.get("deterministic", False)
        if not isinstance(value, bool):
            self.error("deterministic must be true or false", key="deterministic")
            return False
        return value

    def _timeout(self) -> float:
        value = self.meta.get("timeout", DEFAULT_TOOL_TIMEOUT_S)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value <= 0:
            self.error("timeout must be a positive number of seconds", key="timeout")
            return DEFAULT_TOOL_TIMEOUT_S
        return float(value)

    def _schema(self, blocks: list[tuple[str, str, int]]) -> dict[str, Any] | None:
        for key in ("input_schema", "parameters"):
            value = self.meta.get(key)
            if isinstance(value, dict) and ("properties" in value or value.get("type") == "object"):
                return self._json_schema(value, key)
        key = next((k for k in ("input", "parameters") if k in self.meta), None)
        if key is not None:
            return self._short_schema(self.meta[key], key)
        for lang, code, offset in blocks:
            if lang == "json":
                try:
                    value = json.loads(code)
                    from llmunix.specs import safe_yaml

                    safe_yaml.check_value(value)
                except json.JSONDecodeError as exc:
                    self.problems.append(
                        Diagnostic(
                            "error",
                            str(self.doc.path),
                            f"the ```json input schema is not valid JSON: {exc.msg}",
                            self.doc.body_line + offset + exc.lineno - 1,
                        )
                    )
                    return None
                except (RecursionError, ValueError) as exc:
                    self.problems.append(Diagnostic(
                        "error", str(self.doc.path),
                        f"the ```json input schema is refused: {_why(exc)}",
                        self.doc.body_line + offset))
                    return None
                if isinstance(value, dict):
                    return self._json_schema(value, None)
        return {"type": "object", "properties": {}}

    def _json_schema(self, value: dict[str, Any], key: str | None) -> dict[str, Any] | None:
        if value.get("type", "object") != "object" or not isinstance(
            value.get("properties", {}), dict
        ):
            self.error("the input schema must be a JSON Schema of type 'object'", key=key)
            return None
        problem = _schema_problem(value)
        if problem:
            self.error(f"the input schema is not usable: {problem}", key=key)
            return None
        return {"type": "object", **value}

    def _short_schema(self, value: Any, key: str) -> dict[str, Any] | None:
        if value is None:
            return {"type": "object", "properties": {}}
        if not isinstance(value, dict):
            self.error(
                f"'{key}' must map each argument to a type, e.g. 'path: string'",
                key=key,
            )
            return None
        properties: dict[str, Any] = {}
        required: list[str] = []
        for arg, decl in value.items():
            arg = str(arg)
            if isinstance(decl, str):
                decl = {"type": decl}
            if not isinstance(decl, dict):
                self.error(
                    f"argument '{arg}' must be a type name or a mapping", key=f"{key}.{arg}"
                )
                continue
            prop = dict(decl)
            is_required = bool(prop.pop("required", "default" not in prop))
            if prop.get("type") not in SCHEMA_TYPES:
                self.error(
                    f"argument '{arg}' has type {prop.get('type')!r}",
                    key=f"{key}.{arg}",
                    hint="use one of: " + ", ".join(SCHEMA_TYPES),
                )
                continue
            access = prop.get("access", "read")
            if prop.get("format") == "path" and (
                    prop["type"] != "string" or access not in ("read", "write")):
                self.error(
                    f"argument '{arg}' is a path: it needs type string and access read or write",
                    key=f"{key}.{arg}",
                    hint="e.g. {type: string, format: path, access: read}",
                )
                continue
            properties[arg] = prop
            if is_required:
                required.append(arg)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def _command(self, schema: dict[str, Any] | None) -> tuple[str, ...] | None:
        value = self.meta["command"]
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                self.error(f"command cannot be split into arguments: {exc}", key="command")
                return None
        elif isinstance(value, list) and value and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
        ):
            argv = [str(v) for v in value]
        else:
            self.error("command must be a non-empty list of arguments or a string", key="command")
            return None
        if not argv:
            self.error("command is empty", key="command")
            return None
        known = set((schema or {}).get("properties", {}))
        for item in argv:
            for placeholder in _PLACEHOLDER_RE.findall(item):
                if schema is not None and placeholder not in known:
                    self.error(
                        f"command uses {{{placeholder}}} but the input defines no such argument",
                        key="command",
                        hint="declare it under 'input:'",
                    )
        return tuple(argv)

    def _python(self, blocks: list[tuple[str, str, int]]) -> dict[str, Any]:
        target = self.meta["python"]
        if not isinstance(target, str) or not target.strip():
            self.error("python must be 'module:function' or a function name", key="python")
            return {}
        target = target.strip()
        if ":" in target:
            module, _, function = target.partition(":")
            valid = all(p.isidentifier() for p in module.split(".")) and function.isidentifier()
            if not valid:
                self.error(f"python {target!r} is not 'package.module:function'", key="python")
            return {"python": target}
        code_blocks = [(code, offset) for lang, code, offset in blocks if lang in ("python", "py")]
        if not code_blocks:
            self.error(
                f"python: {target} names a function but the body has no ```python block",
                key="python",
            )
            return {}
        source, offset = code_blocks[0]
        try:
            tree = ast.parse(source)
        except (RecursionError, MemoryError, ValueError) as exc:  # nesting past the parser's
            self.problems.append(Diagnostic(
                "error", str(self.doc.path),
                f"python block cannot be parsed: {_why(exc)}",
                self.doc.body_line + offset, "python",
                "split deeply nested expressions into smaller ones"))
            return {}
        except SyntaxError as exc:
            self.problems.append(
                Diagnostic(
                    "error",
                    str(self.doc.path),
                    f"python block has a syntax error: {exc.msg}",
                    self.doc.body_line + offset + (exc.lineno or 1) - 1,
                    "python",
                )
            )
            return {}
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if target not in defined:
            self.error(
                f"the ```python block defines no function '{target}'",
                key="python",
                hint=f"defined: {', '.join(sorted(defined)) or 'none'}",
            )
        return {"python": target, "python_source": source}
