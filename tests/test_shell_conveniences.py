"""The shell's conveniences, through the real console script: shell habits and unknown
`:commands` get a hint and never reach the model; `:history`, `:mode`, `:runtime`, `clear`."""

from __future__ import annotations

from tests.support import agent_text, new_workspace, run_cli, write_spec


def test_habits_and_unknown_commands_get_hints_not_model_turns(tmp_path, openai_server):
    ws = new_workspace(tmp_path / "ws")
    ws.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    write_spec(ws.user_agents_dir, "solo.md", agent_text("solo", tools="Read"))
    openai_server.enqueue("first answer")
    lines = ["ls", "ls -la", "cd projects", "exit", "pwd", ":histroy", ":nonsense", "clear",
             ":clear", ":mode", ":mode auto", ":mode sideways", ":runtime", ":runtime openai",
             "write the first answer", ":history", "help", ":quit"]
    result = run_cli("shell", "--agent", "solo", "--runtime", "claude", "--base-url",
                     openai_server.url, cwd=ws.root, input="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    err, out = result.stderr, result.stdout
    for word in ("ls", "ls", "cd", "pwd"):
        assert f"{word}: this shell runs each line as a goal for the agent" in err
    assert "exit: leave with :quit or Ctrl-D" in err
    assert "unknown command :histroy; did you mean :history? (:help lists them)" in err
    assert "unknown command :nonsense (:help lists them)" in err
    assert "unknown mode 'sideways': choose auto, learner, follower, mixed" in err
    assert out.splitlines()[:4] == ["mode learner", "mode auto", "runtime claude",
                                    "runtime openai"]
    assert "first answer" in out and "   1  write the first answer" in out
    assert ":history  the goals run in this session" in out  # `help` printed the help
    # only the one real goal reached the model, on the runtime chosen with :runtime
    [req] = openai_server.model_requests()
    assert "write the first answer" in str(openai_server.messages(req))
    assert "\x1b" not in out + err  # not a terminal: no control codes, `clear` included
