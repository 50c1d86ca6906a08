"""The scripted model servers, driven by the real clients: `openai` and the Claude Agent SDK
(with its bundled Claude Code CLI)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.scripted import EXHAUSTED_TEXT, ScriptError
from tests.scripted import anthropic_server as A
from tests.scripted import openai_server as O


# ---- OpenAI ------------------------------------------------------------------------------
def _client(server):
    import openai

    return openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
]


def test_openai_plain_text_and_tool_calls(openai_server):
    openai_server.enqueue(
        "hello there",
        O.reply(
            O.text("Writing."),
            O.tool_call("write_file", {"path": "a.txt"}),
            O.tool_call("write_file", '{"path": broken', id="call_bad"),
            usage={"prompt_tokens": 42, "completion_tokens": 3},
        ),
    )
    client = _client(openai_server)
    messages = [{"role": "system", "content": "You are agent Q"}, {"role": "user", "content": "hi"}]

    first = client.chat.completions.create(model="m1", messages=messages, tools=TOOLS)
    assert first.choices[0].message.content == "hello there"
    assert first.choices[0].finish_reason == "stop"
    assert first.model == "m1"

    second = client.chat.completions.create(model="m1", messages=messages, tools=TOOLS)
    msg = second.choices[0].message
    assert second.choices[0].finish_reason == "tool_calls"
    assert msg.content == "Writing."
    assert [c.function.name for c in msg.tool_calls] == ["write_file", "write_file"]
    assert json.loads(msg.tool_calls[0].function.arguments) == {"path": "a.txt"}
    assert msg.tool_calls[1].function.arguments == '{"path": broken'
    assert msg.tool_calls[1].id == "call_bad"
    assert second.usage.prompt_tokens == 42
    assert second.usage.total_tokens == 45

    openai_server.assert_script_used()
    reqs = openai_server.model_requests()
    assert len(reqs) == 2
    assert openai_server.system_prompt(reqs[0]) == "You are agent Q"
    assert openai_server.tool_names(reqs[0]) == ["write_file"]
    assert openai_server.messages(reqs[1])[-1] == {"role": "user", "content": "hi"}
    assert reqs[0].headers["authorization"] == "Bearer test"


def test_openai_streaming_assembles_text_tool_calls_and_usage(openai_server):
    openai_server.enqueue(
        O.reply(
            O.text("Let me write."),
            O.tool_call("write_file", {"path": "a.txt", "content": "x" * 20}),
            O.tool_call("write_file", "not json at all"),
            usage={"prompt_tokens": 7, "completion_tokens": 2},
        )
    )
    stream = _client(openai_server).chat.completions.create(
        model="m2",
        messages=[{"role": "user", "content": "go"}],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        content += choice.delta.content or ""
        for tc in choice.delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = tc.id or call["id"]
            call["name"] += (tc.function.name or "") if tc.function else ""
            call["arguments"] += (tc.function.arguments or "") if tc.function else ""
        finish = choice.finish_reason or finish

    assert content == "Let me write."
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["write_file", "write_file"]
    assert json.loads(calls[0]["arguments"]) == {"path": "a.txt", "content": "x" * 20}
    assert calls[1]["arguments"] == "not json at all"
    assert calls[0]["id"].startswith("call_")
    assert usage.prompt_tokens == 7 and usage.completion_tokens == 2
    req = openai_server.model_requests()[0]
    assert req.body["stream"] is True
    openai_server.assert_script_used()


def test_openai_odd_replies_errors_routing_and_exhaustion(openai_server):
    import openai

    openai_server.enqueue(O.reply(), O.reply(""), O.reply("slow", delay=0.01))
    openai_server.enqueue(O.error(400, "bad request"), O.raw("{not json", status=200))
    openai_server.enqueue("routed", when="MARKER-R")
    client = _client(openai_server)
    user = [{"role": "user", "content": "x"}]

    def ask(messages=user):
        return client.chat.completions.create(model="m", messages=messages)

    # A routed reply goes to the request whose system prompt holds the marker, even though
    # unrouted replies were queued first.
    routed = ask([{"role": "system", "content": "sys MARKER-R"}, *user])
    assert routed.choices[0].message.content == "routed"
    assert openai_server.model_requests(route="MARKER-R")[0].index == 0

    assert ask().choices[0].message.content is None
    assert ask().choices[0].message.content == ""
    assert ask().choices[0].message.content == "slow"
    with pytest.raises(openai.BadRequestError) as exc:
        ask()
    assert exc.value.status_code == 400
    with pytest.raises(ValueError):  # the client cannot decode the body
        ask()
    openai_server.assert_script_used()

    # Script exhausted: a clear text, recorded, and assert_script_used() fails.
    assert ask().choices[0].message.content == EXHAUSTED_TEXT
    assert len(openai_server.exhausted) == 1
    with pytest.raises(ScriptError, match="exhausted"):
        openai_server.assert_script_used()


def test_openai_models_and_unknown_paths_are_recorded(openai_server):
    assert [m.id for m in _client(openai_server).models.list()] == ["scripted-model"]
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(openai_server.base + "/nope")
    assert exc.value.code == 404
    assert [r.path for r in openai_server.other_requests()] == ["/v1/models", "/nope"]
    assert openai_server.model_requests() == []


def test_unconsumed_script_fails_assert(openai_server):
    openai_server.enqueue("never asked", label="lonely")
    with pytest.raises(ScriptError, match="lonely"):
        openai_server.assert_script_used()


# ---- Anthropic over plain HTTP -----------------------------------------------------------
def _post(url: str, body: dict) -> tuple[int, bytes]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_anthropic_json_sse_count_tokens_and_aux(anthropic_server):
    s = anthropic_server
    s.enqueue(A.reply("hi", A.tool_use("Read", {"file_path": "x"}, id="toolu_1")))
    s.enqueue(A.reply("streamed"))
    s.enqueue(A.error(400, "nope"))
    url = s.url + "/v1/messages?beta=true"
    base = {"model": "claude-x", "max_tokens": 100, "system": "S", "tools": [{"name": "Read"}]}
    msgs = [{"role": "user", "content": "q"}]

    status, body = _post(url, {**base, "messages": msgs})
    reply = json.loads(body)
    assert status == 200
    assert reply["stop_reason"] == "tool_use" and reply["model"] == "claude-x"
    assert reply["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "Read",
        "input": {"file_path": "x"},
    }

    # The quota probe is auxiliary: answered without consuming the script.
    status, _ = _post(
        url, {**base, "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]}
    )
    assert status == 200

    status, body = _post(url, {**base, "messages": msgs, "stream": True})
    events = [
        json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")
    ]
    types = [e["type"] for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == (
        "streamed"
    )

    status, body = _post(url, {**base, "messages": msgs})
    assert status == 400 and json.loads(body)["error"]["message"] == "nope"

    status, body = _post(s.url + "/v1/messages/count_tokens", {**base, "messages": msgs})
    assert status == 200 and json.loads(body)["input_tokens"] > 0
    status, _ = _post(s.url + "/v1/other", {})
    assert status == 404

    s.assert_script_used()
    assert [r.kind for r in s.requests] == [
        "model",
        "aux",
        "model",
        "model",
        "count_tokens",
        "other",
    ]
    assert s.aux_requests()[0].aux_reason == "probe (max_tokens=1)"
    assert s.system_prompt(s.model_requests()[0]) == "S"
    assert s.tool_names(s.model_requests()[0]) == ["Read"]


# ---- the real Claude Agent SDK + bundled CLI ---------------------------------------------
def _run_claude(
    server, tmp_path: Path, prompt: str, *, extra_env: dict | None = None, **options
) -> list:
    """Run the real SDK against ``server``; return every message, up to the ResultMessage (the
    SDK raises ResultError after yielding an error result: that is swallowed here)."""
    from claude_agent_sdk import ClaudeAgentOptions, ResultError, query

    env = {
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HOME": str(tmp_path),
        **(extra_env or {}),
    }
    opts = ClaudeAgentOptions(
        cwd=str(tmp_path),
        env=env,
        permission_mode="acceptEdits",
        setting_sources=[],
        **options,
    )

    async def collect() -> list:
        out = []
        try:
            async for message in query(prompt=prompt, options=opts):
                out.append(message)
        except ResultError:
            assert out and getattr(out[-1], "is_error", False)
        return out

    return asyncio.run(collect())


def test_claude_sdk_runs_a_scripted_write(anthropic_server, tmp_path):
    from claude_agent_sdk import AssistantMessage, ResultMessage, ToolUseBlock

    anthropic_server.enqueue(
        A.tool_use("Write", {"file_path": "a.txt", "content": "hi"}),
        A.reply("done", usage={"input_tokens": 100, "output_tokens": 7}),
    )
    messages = _run_claude(
        anthropic_server,
        tmp_path,
        "write a.txt",
        system_prompt="You are test agent X",
        tools=["Write"],
        allowed_tools=["Write"],
    )

    assert (tmp_path / "a.txt").read_text() == "hi"
    anthropic_server.assert_script_used()
    result = messages[-1]
    assert isinstance(result, ResultMessage) and not result.is_error
    assert result.result == "done" and result.num_turns == 2
    assert result.usage["input_tokens"] == 110  # 10 (default) + 100 (scripted)
    tool_uses = [
        b
        for m in messages
        if isinstance(m, AssistantMessage)
        for b in m.content
        if isinstance(b, ToolUseBlock)
    ]
    assert [t.name for t in tool_uses] == ["Write"]

    reqs = anthropic_server.model_requests()
    assert len(reqs) == 2 and anthropic_server.aux_requests() == []
    assert all(r.query == {"beta": ["true"]} and r.body["stream"] for r in reqs)
    assert anthropic_server.system_prompt(reqs[0]).endswith("You are test agent X")
    assert anthropic_server.tool_names(reqs[0]) == ["Write"]
    assert "DeferredToolPlaceholder" in anthropic_server.tool_names(reqs[0], deferred=True)
    assert anthropic_server.messages(reqs[0])[0] == {"role": "user", "content": "write a.txt"}
    [result_block] = anthropic_server.tool_results(reqs[1])
    assert result_block["tool_use_id"] == tool_uses[0].id


def test_claude_sdk_subagent_routed_by_marker(anthropic_server, tmp_path):
    from claude_agent_sdk import AgentDefinition, AssistantMessage, ResultMessage

    marker = "MARKER-SUB-7"
    agent_call = A.tool_use(
        "Agent",
        {
            "description": "write a file",
            "prompt": "write sub.txt",
            "subagent_type": "writer",
            # Sub-agents run in the background by default, and then the number of main-agent
            # turns depends on timing; in the foreground the run is deterministic.
            "run_in_background": False,
        },
    )
    anthropic_server.enqueue(agent_call, "main done")
    anthropic_server.enqueue(
        A.tool_use("Write", {"file_path": "sub.txt", "content": "from sub"}),
        "sub done",
        when=marker,
    )
    messages = _run_claude(
        anthropic_server,
        tmp_path,
        "delegate",
        system_prompt="You are the main agent",
        tools=["Agent", "Write"],
        allowed_tools=["Agent", "Write"],
        agents={
            "writer": AgentDefinition(
                description="writes files", prompt=f"You write files. {marker}", tools=["Write"]
            )
        },
    )

    assert (tmp_path / "sub.txt").read_text() == "from sub"
    anthropic_server.assert_script_used()
    results = [m for m in messages if isinstance(m, ResultMessage)]
    assert len(results) == 1 and results[0].result == "main done"
    sub_msgs = [
        m for m in messages if isinstance(m, AssistantMessage) and m.parent_tool_use_id is not None
    ]
    assert {m.parent_tool_use_id for m in sub_msgs} == {agent_call["id"]}

    reqs = anthropic_server.model_requests()
    assert [r.route for r in reqs] == [None, marker, marker, None]
    assert [A.is_subagent(r) for r in reqs] == [False, True, True, False]
    assert anthropic_server.tool_names(reqs[0]) == ["Agent", "Write"]
    assert anthropic_server.tool_names(reqs[1]) == ["Write"]
    assert marker in anthropic_server.system_prompt(reqs[1])
    assert anthropic_server.messages(reqs[1])[0] == {"role": "user", "content": "write sub.txt"}
    [handback] = anthropic_server.tool_results(reqs[3])
    assert handback["tool_use_id"] == agent_call["id"]
    assert "sub done" in json.dumps(handback["content"])


def test_claude_sdk_run_ends_when_script_is_exhausted(anthropic_server, tmp_path):
    from claude_agent_sdk import ResultMessage

    messages = _run_claude(anthropic_server, tmp_path, "hi", system_prompt="S", tools=[])
    assert isinstance(messages[-1], ResultMessage)
    assert messages[-1].result == EXHAUSTED_TEXT
    assert len(anthropic_server.exhausted) == 1
    with pytest.raises(ScriptError):
        anthropic_server.assert_script_used()


def test_claude_sdk_error_reply_fails_the_run(anthropic_server, tmp_path):
    from claude_agent_sdk import ResultMessage

    anthropic_server.enqueue(A.error(500, "scripted outage"))
    messages = _run_claude(
        anthropic_server,
        tmp_path,
        "hi",
        extra_env={"CLAUDE_CODE_MAX_RETRIES": "0"},  # else the CLI retries 5xx with back-off
        system_prompt="S",
        tools=[],
    )
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.is_error
    assert "scripted outage" in result.result
    assert len(anthropic_server.model_requests()) == 1
    anthropic_server.assert_script_used()
