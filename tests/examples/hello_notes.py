"""The hello-notes example, learned once: a scripted model plays the LLM in a real learner run
(OpenAI runtime, llmunix's own tools), and consolidation turns its trace into the long-term
trace the example ships, so `llmunix run "<GOAL>" --project hello-notes` replays offline.

Tests use `learn()` to check the learner -> consolidate -> follower cycle; regenerate the shipped
trace with `python -m tests.examples.hello_notes` after changing the example.
"""

from __future__ import annotations

from tests.examples.record import record
from tests.scripted.openai_server import OpenAIServer, reply, text, tool_call

PROJECT = "hello-notes"
GOAL = "Turn the meeting notes in meetings/ into action_items.md"
NOTES = (
    "meetings/2025-03-03-kickoff.md",
    "meetings/2025-03-10-design-review.md",
    "meetings/2025-03-17-weekly-sync.md",
)
ACTION_ITEMS = """# Action items — support portal migration

As of the weekly sync on 17 March 2025. Sources: the kickoff (3 March), the design review
(10 March) and the weekly sync (17 March) in `meetings/`.

## Open, by owner

### Lena
- Usability test of form v2 with 3 customers — due 2025-03-26 (weekly sync)

### Marco
- Import the ticket CSV into staging; check the counts match the export (4,812) — due
  2025-03-21 (weekly sync)

### Priya
- Write answers for the top 10 FAQ questions, taken over from Sam — due 2025-03-24 (weekly sync)

### Sam
- Hand over the FAQ notes to Priya before leave (20-28 March) — due 2025-03-19 (weekly sync)

## Done
- Ticket export (Marco)
- Hosting budget (Priya)
- Wireframes v1 (Lena)
- FAQ question list (Sam; moved to 12 March and delivered)
- Form revised to 5 fields (Lena)
- Staging instance up at staging.support.internal (Marco)

## Decisions
- Self-hosted on the existing VPS.
- Tickets from before 2022 are not migrated.
- support@ stays and forwards into the portal for 6 months after launch.

## Open questions
- Who maintains the FAQ after launch.
- Launch date: 7 April if the usability test raises no blockers; decided on 27 March.
"""
WRITER_MARKER = "You are a writer."
MODEL = "scripted-model"


def script(server: OpenAIServer) -> None:
    """The conversation a capable model has for GOAL: look, read, delegate the writing, check."""
    server.enqueue(
        reply(text("Let me see which notes there are."),
              tool_call("Glob", {"pattern": "meetings/*.md"})),
        reply(*[tool_call("Read", {"file_path": note}) for note in NOTES]),
        tool_call("Agent", {
            "subagent_type": "writer",
            "description": "write action_items.md",
            "prompt": "Write action_items.md in the workspace with exactly this content:\n\n"
            + ACTION_ITEMS,
        }),
        tool_call("Read", {"file_path": "action_items.md"}),
        "Done: action_items.md lists the 4 open items by owner (Lena, Marco, Priya, Sam), the 6 "
        "done items, 3 decisions and 2 open questions, from all three meetings.",
    )
    server.enqueue(
        tool_call("Write", {"file_path": "action_items.md", "content": ACTION_ITEMS}),
        "Wrote action_items.md.",
        when=WRITER_MARKER,
    )


def learner_args(server: OpenAIServer) -> list[str]:
    """`llmunix` arguments for a learner run of GOAL against the scripted server."""
    return ["run", GOAL, "--project", PROJECT, "--mode", "learner", "--runtime", "openai",
            "--base-url", server.url, "--model", MODEL, "--quiet"]


def main() -> None:
    record(PROJECT, script, learner_args)


if __name__ == "__main__":
    main()
