"""Headless Chromium for tests: load a local page, read what it rendered (the DOM after its
scripts ran), take a screenshot, and list the requests the page made (from Chromium's own
network log). Every lookup of a host name fails (host-resolver rules), so nothing leaves the
machine, whatever the browser or a page tries."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def available() -> bool:
    return Path(CHROMIUM).is_file()


def _run(args: list[str], tmp: Path, name: str) -> subprocess.CompletedProcess:
    profile = tmp / f"chromium-profile-{name}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def dump_dom(page: Path, tmp: Path, *, netlog: Path | None = None, fragment: str = "") -> str:
    """The page's DOM once loaded and its scripts have run, as HTML."""
    extra = [f"--log-net-log={netlog}"] if netlog else []
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    done = _run([*extra, "--dump-dom", url], tmp, f"dom-{len(list(tmp.iterdir()))}")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, tmp: Path, *, width: int = 1280, height: int = 900) -> Path:
    shot = tmp / f"{page.stem}.png"
    done = _run([f"--screenshot={shot}", f"--window-size={width},{height}",
                 "--hide-scrollbars", page.resolve().as_uri()], tmp, "shot")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    return shot


def page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for (requests whose isolation key is the file:// page),
    leaving out the browser's own background traffic."""
    data = json.loads(netlog.read_text(encoding="utf-8"))
    types = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    urls = []
    for event in data["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB":
            continue
        if "file://" in str(params.get("network_isolation_key", "")):
            urls.append(str(params.get("url")))
    return urls


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height

