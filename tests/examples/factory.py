"""The factory example, learned once: a scripted model plays the orchestrator of a real learner
run (OpenAI runtime) that finds no agent fit for the goal, creates two specialists with
CreateAgent and delegates to each in the same run; consolidation turns the trace into the
learned trace the example ships, so `llmunix run "<GOAL>" --project factory` replays offline:
the follower re-creates both specs (checking their content hashes) and replays their work.

Regenerate the shipped trace with `python -m tests.examples.factory` after changing the example.
"""

from __future__ import annotations

from tests.examples.record import record
from tests.scripted.openai_server import OpenAIServer, reply, text, tool_call

PROJECT = "factory"
GOAL = "Write a glossary and an FAQ for the docs in docs/"
DOCS = ("docs/product.md", "docs/support.md")
MODEL = "scripted-model"
GLOSSARY_MARKER = "You write glossaries"
FAQ_MARKER = "You write FAQs"

GLOSSARY_AGENT = {
    "name": "glossary-writer",
    "description": "Writes a glossary of a product's terms from its docs. Delegate when a goal "
                   "asks for a glossary or term definitions.",
    "tools": ["Read", "Write"],
    "constraints": {"write_paths": ["glossary.md"], "allowed_extensions": [".md"]},
    "body": f"""{GLOSSARY_MARKER} for the people who use a product.

## Inputs
The docs to draw on (paths relative to your working directory) and the output path.

## How to work
1. Read every doc named in the task.
2. List each term the docs define or use in bold, once, in alphabetical order.
3. Define each in one sentence, with the facts (numbers, prices, limits) exactly as the docs
   give them; name the doc it comes from.

## Rules
- Write only the glossary file you are given. No terms the docs do not mention.

## Final answer
The path written and the number of terms.""",
}
FAQ_AGENT = {
    "name": "faq-writer",
    "description": "Writes a question-and-answer FAQ for customers from support notes. Delegate "
                   "when a goal asks for an FAQ or answers to common questions.",
    "tools": ["Read", "Write"],
    "constraints": {"write_paths": ["faq.md"], "allowed_extensions": [".md"]},
    "body": f"""{FAQ_MARKER} for customers, from a product's support notes.

## Inputs
The support notes and product docs to draw on, and the output path.

## How to work
1. Read every doc named in the task.
2. Turn each answered question into a `###` heading phrased as the customer asks it, and a
   short answer with the exact times, amounts and contacts from the notes.
3. Order the questions as a customer meets them: booking, changing, arriving, paying.

## Rules
- Write only the FAQ file you are given. Never invent a policy the notes do not state.

## Final answer
The path written and the number of questions.""",
}
GLOSSARY = """# Tidewater glossary

- **Berth**: a numbered mooring place along a pontoon, sized by boat length (up to 8 m, 12 m or
  18 m). (docs/product.md)
- **Harbour dues**: the charge per night and per metre of boat length: EUR 2.10 from October
  to April, EUR 3.40 from May to September. (docs/product.md)
- **Reservation**: one berth held for a range of nights; pending until the harbour office
  confirms it (within two hours), then confirmed. (docs/product.md)
- **Shore power**: 16 A electricity, included at every berth. (docs/product.md)
"""
FAQ = """# Tidewater FAQ

### How do I book a berth for a boat over 18 m?
Boats over 18 m cannot book online: call the harbour office on +31 20 555 0142.

### When is my reservation confirmed?
The harbour office confirms each reservation within two hours.

### Can I change my dates?
Yes, free of charge up to 48 hours before arrival; a later change costs one night of harbour
dues.

### What if I cancel?
Full refund up to 7 days before arrival, 50 % up to 48 hours before, nothing after that.

### What if I arrive after 20:00?
Moor at the visitor pontoon and check in at the office at 08:00 the next morning.

### When do I pay?
By card when you book; the harbour dues are charged when the office confirms.
"""
RESULT = ("Done: a glossary (4 terms) and an FAQ (6 questions) for the Tidewater docs, each "
          "written by a specialist created for it.\nProduced:\n- glossary.md - 4 terms with "
          "their sources\n- faq.md - 6 questions, booking to payment")


def script(server: OpenAIServer) -> None:
    """What a capable orchestrator does: look, read, find no fitting agent, create two
    specialists, delegate to each, check their files."""
    server.enqueue(
        reply(text("Let me see the docs."), tool_call("Glob", {"pattern": "docs/*.md"})),
        reply(*[tool_call("Read", {"file_path": doc}) for doc in DOCS]),
        reply(text("No agent fits a glossary or an FAQ; I create two specialists."),
              tool_call("CreateAgent", GLOSSARY_AGENT)),
        tool_call("CreateAgent", FAQ_AGENT),
        tool_call("Agent", {
            "subagent_type": "glossary-writer", "description": "write glossary.md",
            "prompt": "Write glossary.md from docs/product.md with exactly this content:\n\n"
            + GLOSSARY}),
        tool_call("Agent", {
            "subagent_type": "faq-writer", "description": "write faq.md",
            "prompt": "Write faq.md from docs/support.md with exactly this content:\n\n" + FAQ}),
        reply(tool_call("Read", {"file_path": "glossary.md"}),
              tool_call("Read", {"file_path": "faq.md"})),
        RESULT,
    )
    server.enqueue(tool_call("Write", {"file_path": "glossary.md", "content": GLOSSARY}),
                   "Wrote glossary.md (4 terms).", when=GLOSSARY_MARKER)
    server.enqueue(tool_call("Write", {"file_path": "faq.md", "content": FAQ}),
                   "Wrote faq.md (6 questions).", when=FAQ_MARKER)


def learner_args(server: OpenAIServer) -> list[str]:
    return ["run", GOAL, "--project", PROJECT, "--mode", "learner", "--runtime", "openai",
            "--base-url", server.url, "--model", MODEL, "--quiet"]


def main() -> None:
    record(PROJECT, script, learner_args)


if __name__ == "__main__":
    main()
