"""The configuration in effect: checked when its text is new, read back from
`.llmunix/config.marshal` otherwise, and never stale."""

from __future__ import annotations

import marshal
import os

import pytest

from llmunix.checked import Invalid, validate
from llmunix.errors import ConfigError
from llmunix.workspace import config as config_module
from llmunix.workspace.config import CACHE_FILE, Config, ContextConfig, load_config
from tests.support import new_workspace, run_cli


@pytest.fixture
def ws(tmp_path):
    return new_workspace(tmp_path / "ws")


def toml(ws):
    return ws.root / "llmunix.toml"


def no_checking(monkeypatch):
    """Fail if the configuration is parsed and checked instead of read from the cache."""
    def refuse(*_a, **_k):
        raise AssertionError("checked again")

    monkeypatch.setattr(config_module, "_load", refuse)


def test_init_leaves_the_checked_configuration_for_the_first_command(ws, monkeypatch):
    assert (ws.root / CACHE_FILE).is_file()
    no_checking(monkeypatch)
    assert load_config(toml(ws)) == Config()


def test_an_edit_is_in_effect_at_the_next_load_even_with_the_same_size_and_time(ws):
    assert load_config(toml(ws)).limits.max_turns == 40
    st = toml(ws).stat()
    text = toml(ws).read_text()
    toml(ws).write_text(text.replace("max_turns = 40", "max_turns = 41"))
    os.utime(toml(ws), ns=(st.st_atime_ns, st.st_mtime_ns))  # an editor that keeps the time
    assert toml(ws).stat().st_size == st.st_size
    assert load_config(toml(ws)).limits.max_turns == 41


def test_a_bad_edit_is_reported_with_file_and_line_after_a_cached_load(ws):
    assert run_cli("boot", cwd=ws.root).returncode == 0
    text = toml(ws).read_text()
    toml(ws).write_text(text.replace("keep_short_term = 200", "keep_short_term = 0"))
    result = run_cli("boot", cwd=ws.root)
    assert result.returncode == 1
    line = text[:text.index("keep_short_term = 200")].count("\n") + 1
    assert f"llmunix.toml:{line}" in result.stderr
    assert "memory.keep_short_term" in result.stderr and "Traceback" not in result.stderr


def test_the_user_config_and_the_environment_are_part_of_the_key(ws, tmp_path):
    xdg = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(xdg)}
    assert load_config(toml(ws), env).run.model == ""
    (xdg / "llmunix").mkdir(parents=True)
    toml(ws).write_text("")  # the workspace leaves [run] to the user and the environment
    assert load_config(toml(ws), env).run.model == ""
    (xdg / "llmunix" / "config.toml").write_text('[run]\nmodel = "from-user"\n')
    assert load_config(toml(ws), env).run.model == "from-user"
    assert load_config(toml(ws), {**env, "LLMUNIX_MODEL": "from-env"}).run.model == "from-env"
    assert load_config(toml(ws), env).run.model == "from-user"
    with pytest.raises(ConfigError, match=r"\$LLMUNIX_RUNTIME"):
        load_config(toml(ws), {**env, "LLMUNIX_RUNTIME": "nope"})


def test_cached_values_are_those_checked(ws, monkeypatch):
    toml(ws).write_text(
        '[run]\nruntime = "openai"\n[sandbox]\nenv = ["LANG"]\n'
        '[openai.models."small-*"]\ntemperature = 0.2\n[prices."m"]\ninput = 1.5\n'
        '[models."m"]\ncontext_window = 4096\n[context]\nlow_water = 0.25\n')
    checked = load_config(toml(ws))
    no_checking(monkeypatch)
    again = load_config(toml(ws))
    assert again == checked
    assert again.openai.models["small-*"].temperature == 0.2
    assert type(again.openai.models["small-*"]).__name__ == "RequestSettings"
    assert again.prices["m"].input == 1.5 and again.models["m"].context_window == 4096
    assert again.sandbox.env == ["LANG"] and again.context.low_water == 0.25


@pytest.mark.parametrize("content", [b"", b"\x00garbage", marshal.dumps(("other", {}))[:-3],
                                     marshal.dumps((("old key",), {"run": {}}))])
def test_a_damaged_or_foreign_cache_is_checked_again_and_rewritten(ws, content):
    (ws.root / CACHE_FILE).write_bytes(content)
    assert load_config(toml(ws)) == Config()
    assert (ws.root / CACHE_FILE).read_bytes() != content


def test_no_cache_can_be_written_and_the_configuration_still_loads(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    (ws.root / CACHE_FILE).unlink()
    (ws.root / CACHE_FILE).parent.rmdir()
    (ws.root / CACHE_FILE).parent.write_text("not a folder")  # .llmunix is a file here
    toml(ws).write_text("[limits]\nmax_turns = 5\n")
    assert load_config(toml(ws)).limits.max_turns == 5
    assert not list(ws.root.glob("*.tmp"))


def test_a_toml_syntax_error_names_its_line(ws):
    toml(ws).write_text("[run]\nmodel = \"a\"\n[run]\n")
    with pytest.raises(ConfigError) as err:
        load_config(toml(ws))
    assert err.value.line == 3


def test_rules_over_several_fields_and_nested_sections():
    with pytest.raises(Invalid) as err:
        validate(Config, {"context": {"high_water": 0.5, "low_water": 0.6}})
    assert err.value.errors[0]["loc"] == ("context",)
    assert "low_water must be below high_water" in str(err.value)
    with pytest.raises(Invalid, match=r"openai\.models\.m\.temperature"):
        validate(Config, {"openai": {"models": {"m": {"temperature": 3}}}})
    assert validate(ContextConfig, {"low_water": 0.1}).high_water == 0.75


def test_init_with_a_broken_user_config_still_succeeds_and_the_next_command_names_it(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "llmunix").mkdir(parents=True)
    (xdg / "llmunix" / "config.toml").write_text("[limits]\nmax_turns = -1\n")
    env = {"XDG_CONFIG_HOME": str(xdg)}
    made = run_cli("init", str(tmp_path / "ws"), cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    result = run_cli("boot", cwd=tmp_path / "ws", env=env)
    assert result.returncode == 1
    assert "config.toml:2" in result.stderr and "limits.max_turns" in result.stderr
    assert "Traceback" not in result.stderr
