"""Crystallized vs follower vs learner vs the floor, on one goal, alternated in one run.

The goal writes a package skeleton (a README, an index entry; the index is reset before each
run, untimed, so the follower's checked Read sees what the learned run saw). It is learned
twice with different names (a scripted model with no delay, OpenAI runtime), consolidated and
crystallized; then each round runs a new name four ways, in turn:
- learner: `llmunix run --mode learner` against the instant scripted model;
- follower: `llmunix run --mode follower` replaying the learned trace;
- crystallized: `llmunix run` (auto picks the crystallized tool; the model server is not used);
- floor: a bare `python -c` doing the same file operations, then `git add` + `git commit`.
Prints medians of whole-process wall time, the in-run time (the trace's duration_s: the model
loop, the replay loop, or the tool), tokens, and the ratios. `python bench/crystallized.py [N]`
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmunix.trace.markdown import find_traces, read_trace  # noqa: E402
from tests.scripted.openai_server import OpenAIServer, tool_call  # noqa: E402
from tests.support import run_cli  # noqa: E402

PROJECT = "bench"
TEMPLATE = "# NAME\n\nThe NAME package.\n"


def goal(name: str) -> str:
    return f"Set up the package {name} in pkgs/"


def script(server: OpenAIServer, name: str) -> None:
    server.enqueue(
        tool_call("Read", {"file_path": "index.md"}),
        tool_call("Write", {"file_path": f"pkgs/{name}/README.md",
                            "content": TEMPLATE.replace("NAME", name)}),
        tool_call("Edit", {"file_path": "index.md", "old_string": "<!-- end -->",
                           "new_string": f"- {name}\n<!-- end -->"}),
        f"Set up pkgs/{name}.",
    )


def last_trace(root: Path) -> dict:
    paths = find_traces(root / "projects" / PROJECT / "memory" / "short_term")
    return read_trace(paths[-1]).meta


def floor(root: Path, name: str) -> None:
    code = (
        "import pathlib,sys;n=sys.argv[1];w=pathlib.Path('projects/bench/workspace');"
        "(w/'index.md').read_text();d=w/'pkgs'/n;d.mkdir(parents=True,exist_ok=True);"
        f"(d/'README.md').write_text({TEMPLATE!r}.replace('NAME',n));"
        "i=w/'index.md';"
        "i.write_text(i.read_text().replace('<!-- end -->','- '+n+'\\n<!-- end -->'))"
    )
    subprocess.run([sys.executable, "-c", code, name], cwd=root, check=True)
    subprocess.run(["git", "add", "-A", "projects/bench/workspace"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"floor {name}"], cwd=root, check=True)


def main(rounds: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        root = Path(tmp) / "ws"
        run_cli("init", str(root), cwd=Path(tmp))
        index = root / "projects" / PROJECT / "workspace" / "index.md"
        index.parent.mkdir(parents=True)
        index.write_text("# Packages\n\n<!-- end -->\n")
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "bench setup"], cwd=root, check=True)
        base = ["--project", PROJECT, "--runtime", "openai", "--base-url", server.url,
                "--model", "scripted-model", "--quiet"]
        for name in ("alpha", "beta"):
            script(server, name)
            done = run_cli("run", goal(name), *base, "--mode", "learner", cwd=root)
            assert done.returncode == 0, done.stderr
        assert run_cli("memory", "consolidate", cwd=root).returncode == 0
        made = run_cli("memory", "crystallize", "--project", PROJECT, cwd=root)
        assert made.returncode == 0, made.stderr
        learned = sorted((root / "projects" / PROJECT / "memory" / "long_term").glob("*.md"))
        times: dict[str, list[float]] = {k: [] for k in ("learner", "follower", "crystallized",
                                                          "floor")}
        inner: dict[str, list[float]] = {k: [] for k in times}
        tokens: dict[str, int] = dict.fromkeys(times, 0)
        for r in range(rounds):
            for way in times:
                name = f"{way[:3]}{r}"
                index.write_text("# Packages\n\n<!-- end -->\n")  # as the learned runs saw it
                started = time.perf_counter()
                if way == "floor":
                    floor(root, name)
                elif way == "learner":
                    script(server, name)
                    done = run_cli("run", goal(name), *base, "--mode", "learner", cwd=root)
                elif way == "follower":
                    done = run_cli("trace", "replay", str(learned[0]), cwd=root)
                else:
                    done = run_cli("run", goal(name), *base, cwd=root)
                times[way].append(time.perf_counter() - started)
                if way != "floor":
                    assert done.returncode == 0, (way, done.stderr)
                    meta = last_trace(root)
                    if way == "crystallized":
                        assert meta["mode"] == "crystallized", meta["mode"]
                    inner[way].append(float(meta["duration_s"]))
                    tokens[way] += int(meta["input_tokens"]) + int(meta["output_tokens"])
        med = {k: statistics.median(v) for k, v in times.items()}
        mid = {k: statistics.median(v) for k, v in inner.items() if v}
        print(f"{rounds} rounds, alternated; medians of whole-process wall time")
        for way in times:
            extra = f"; in-run {mid[way] * 1000:.1f} ms" if way in mid else ""
            print(f"  {way:<13} {med[way] * 1000:7.1f} ms{extra}; tokens {tokens[way]}")
        print(f"crystallized / floor: {med['crystallized'] / med['floor']:.2f}x "
              f"(goal <= 1.5x)")
        print(f"follower / crystallized, whole run: {med['follower'] / med['crystallized']:.2f}x;"
              f" in-run (replay loop vs tool): {mid['follower'] / mid['crystallized']:.2f}x "
              "(goal >= 3x)")
        print(f"learner / crystallized: {med['learner'] / med['crystallized']:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
