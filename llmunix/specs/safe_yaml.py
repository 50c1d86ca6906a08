"""YAML with bounds, for every frontmatter llmunix reads (specs users write, traces it wrote):
a 400-byte file must not be able to cost gigabytes or a traceback. Before any value is built, the
node graph is checked: nesting depth, the number of values once aliases are expanded ("billion
laughs"), recursive aliases, integer and string sizes, duplicate keys. Values that still fail
to build (an impossible date) become errors with their line."""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 40  # nested mappings and lists
MAX_VALUES = 20_000  # values in a document with every alias expanded
MAX_INT_DIGITS = 40
MAX_SCALAR_CHARS = 200_000

try:  # libyaml is ~10x faster; boot parses every spec in the workspace
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Base = yaml.SafeLoader

_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class BoundError(yaml.MarkedYAMLError):
    """A document over one of the bounds; carries the mark of the node at fault."""


class _Loader(_Base):  # type: ignore[misc, valid-type]
    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. `date: 2024-13-45`
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark) from None


def compose(text: str, *, first_line: int = 1, max_values: int = MAX_VALUES
            ) -> tuple[Any, Any]:
    """(loader, root node or None) for one YAML document, checked against the bounds. The
    caller builds the values with `build(loader, node)` and disposes of the loader.
    `first_line`: the file line the text starts on (for messages naming another line)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            check(node, first_line=first_line, max_values=max_values)
    except BaseException:
        loader.dispose()
        raise
    return loader, node


def build(loader, node) -> Any:
    return loader.construct_document(node)


def load(text: str, *, max_values: int = MAX_VALUES) -> Any:
    """Parse one bounded YAML document into Python values (None for an empty one)."""
    loader, node = compose(text, max_values=max_values)
    try:
        return None if node is None else build(loader, node)
    finally:
        loader.dispose()


def _fail(message: str, node) -> BoundError:
    return BoundError(None, None, message, node.start_mark)


def check(root, *, first_line: int = 1, max_values: int = MAX_VALUES) -> None:
    """Raise BoundError when the node graph is over a bound. Work is linear in the number of
    distinct nodes (an alias is a shared node, visited once)."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, height)
    active: set[int] = set()

    def visit(node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in done:
            values, height = done[key]
            if depth + height > MAX_DEPTH:
                raise _fail(f"values are nested more than {MAX_DEPTH} levels deep", node)
            return values, height
        if key in active:
            raise _fail("an alias refers to the value that contains it (a recursive alias)",
                        node)
        if depth > MAX_DEPTH:
            raise _fail(f"values are nested more than {MAX_DEPTH} levels deep", node)
        if isinstance(node, yaml.ScalarNode):
            value = node.value
            if len(value) > MAX_SCALAR_CHARS:
                raise _fail(f"a value of {len(value):,} characters (at most "
                            f"{MAX_SCALAR_CHARS:,})", node)
            if node.tag == _INT_TAG and len(value) > MAX_INT_DIGITS:
                raise _fail(f"a number with {len(value):,} digits (at most {MAX_INT_DIGITS})",
                            node)
            done[key] = (1, 0)
            return 1, 0
        active.add(key)
        values, height = 1, 0
        if isinstance(node, yaml.MappingNode):
            children = []
            seen: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    name = f"{key_node.tag}:{key_node.value}"
                    if name in seen:
                        raise _fail(f"duplicate key '{key_node.value}' (first on line "
                                    f"{seen[name].start_mark.line + first_line})",
                                    key_node)
                    seen[name] = key_node
                children += [key_node, value_node]
        else:
            children = list(node.value)
        for child in children:
            v, h = visit(child, depth + 1)
            values += v
            height = max(height, h + 1)
            if values > max_values:
                raise _fail(f"more than {max_values:,} values once aliases are expanded "
                            "(an alias bomb?)", node)
        active.discard(key)
        done[key] = (values, height)
        return values, height

    visit(root, 0)


def check_value(value: Any, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> None:
    """The same bounds for a value read some other way (a ```json block): ValueError when over."""
    count = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > max_values:
            raise ValueError(f"more than {max_values:,} values")
        if depth > max_depth:
            raise ValueError(f"values are nested more than {max_depth} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
