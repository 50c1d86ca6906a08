"""The live registry: a workspace's agents and tools kept current while llmunix runs.

A watchdog observer reports changes in the spec folders; a worker thread re-reads only the files
that changed, once they have been quiet for a moment (editors write a temp file and rename it, or
write several times in a row) and, where the platform reports it (inotify), once the writer has
closed them, so a half-written file is not parsed. A file that no longer parses keeps its last
good version active and is reported; fixing it activates the new version; deleting it removes it.
The effective registry is composed by `registry.build_registry`, with the same scope rules as
`load_registry`.

File system events only say which paths to look at again: the worker always reads the files
themselves, so a missed or reordered event costs a late reload, never a wrong one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmunix.errors import LlmunixError
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.folders import WatchedFolders
from llmunix.specs.registry import (
    LoadedFile,
    Registry,
    ScopeDir,
    build_registry,
    scope_dirs,
)
from llmunix.specs.reload import (
    _MISSING,
    _SAME,
    _UNSTABLE,
    CONFIRM_S,
    DEBOUNCE_S,
    MAX_WAIT_S,
    LiveStatus,
    ReloadError,
    ReloadEvent,
    _active,
    _Change,
    _digest,
    _File,
    _first_errors,
    _Pending,
)
from llmunix.workspace.layout import Project, Workspace


class _Handler:
    """What the watchdog observer calls (on its own thread) for every file system event."""

    def __init__(self, live: LiveRegistry) -> None:
        self.live = live

    def dispatch(self, event: Any) -> None:
        self.live._on_fs_event(event)


class LiveRegistry(WatchedFolders):
    """The registry of `project` (system and user scopes only when None), kept current.

    `start()` loads every spec and starts watching; `snapshot()` is the registry for a run;
    `subscribe(fn)` receives every ReloadEvent; `wait_for(predicate)` and `sync()` let callers
    wait for the registry to catch up without sleeping. With `all_projects`, the files of every
    project (and projects created later) are watched and validated too; `snapshot()` stays
    `project`'s registry.
    """

    def __init__(
        self,
        ws: Workspace,
        project: Project | None = None,
        *,
        all_projects: bool = False,
        debounce_s: float = DEBOUNCE_S,
        max_wait_s: float = MAX_WAIT_S,
        confirm_s: float = CONFIRM_S,
        keep_events: int = 100,
    ) -> None:
        self.ws = ws
        self.project = project
        self.all_projects = all_projects
        self.debounce_s = debounce_s
        self.max_wait_s = max_wait_s
        self.confirm_s = confirm_s
        self._cond = threading.Condition(threading.RLock())
        self._files: dict[Path, _File] = {}
        self._folders: dict[Path, dict[str, tuple[Path, _File]]] = {}  # the same, by folder
        self._pending: dict[Path, _Pending] = {}
        self._in_flight: set[Path] = set()  # taken from _pending, being read by the worker
        self._scope_dirs: dict[Path, ScopeDir] = {}
        self._main_folders = {d.folder for d in scope_dirs(ws, project)}
        self._structure = False
        self._sync_asked = 0
        self._sync_done = 0
        self._generation = 0
        self._registry = Registry(ws, project)
        self._errors: dict[str, Diagnostic] = {}
        self._events: deque[ReloadEvent] = deque(maxlen=keep_events)
        self._subscribers: list[Callable[[ReloadEvent], None]] = []
        self._observer: Any = None
        self._handler = _Handler(self)
        self._watches: dict[Path, tuple[Any, tuple[int, int]]] = {}
        self._close_events = False
        self._worker: threading.Thread | None = None
        self._stopping = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> LiveRegistry:
        """Watch the spec folders, then load every spec (errors are reported as events)."""
        try:
            from watchdog.observers import Observer
        except ImportError as exc:  # pragma: no cover - a hard dependency
            raise LlmunixError("watchdog is not installed", hint="pip install watchdog") from exc
        self._observer = Observer()
        self._observer.start()
        # inotify reports when a writer closes a file; elsewhere only the quiet time protects
        # against reading a file mid-write.
        self._close_events = type(self._observer).__name__ == "InotifyObserver"
        try:
            self._process({}, structure=True, sync=0, initial=True)
        except BaseException:
            self._stop_observer()
            raise
        self._worker = threading.Thread(target=self._work, name="llmunix-live-registry",
                                        daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10)
        self._stop_observer()

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None

    def __enter__(self) -> LiveRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ reading it

    def current(self) -> Registry:
        """The registry in effect now. Shared: do not modify it."""
        return self._registry

    def snapshot(self) -> Registry:
        """A copy of the registry in effect now, for a run: later changes do not touch it."""
        reg = self._registry
        return dataclasses.replace(reg, agents=dict(reg.agents), tools=dict(reg.tools),
                                   overrides=list(reg.overrides),
                                   diagnostics=list(reg.diagnostics))

    @property
    def generation(self) -> int:
        """Counts the rebuilds of the registry since start (the first load is 1)."""
        return self._generation

    def events(self) -> list[ReloadEvent]:
        """The latest events, oldest first."""
        with self._cond:
            return list(self._events)

    def watching(self) -> list[Path]:
        with self._cond:
            return sorted(self._watches)

    def status(self) -> LiveStatus:
        with self._cond:
            reg = self._registry
            return LiveStatus(self._generation, len(reg.agents), len(reg.tools), len(self._files),
                              reg.errors, list(self._events), sorted(self._watches))

    def subscribe(self, fn: Callable[[ReloadEvent], None]) -> Callable[[], None]:
        """Call `fn` with every event from now on (on the watcher's thread, in order).
        Subscribe before `start()` to also get the errors found by the first load."""
        with self._cond:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._cond:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def wait_for(self, predicate: Callable[[LiveRegistry], bool], timeout: float = 10.0) -> bool:
        """Block until `predicate(self)` holds (checked after every change) or `timeout` passes;
        returns whether it holds."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def sync(self, timeout: float = 10.0) -> Registry:
        """Look at every spec file now, without waiting for the quiet time, and return the
        snapshot. A file reported open for writing is read once its writer closes it (at most
        `max_wait_s` later): never half-written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._worker is None or self._stopping:
                raise LlmunixError("the live registry is not running")
            self._sync_asked += 1
            ticket = self._sync_asked
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._sync_done >= ticket or self._stopping, timeout)
            if self._pending or self._in_flight:  # being written when looked at: let settle
                # generous: on a loaded machine the worker may need a while to get to them
                rest = min(deadline - time.monotonic(), 5 * self.max_wait_s)
                self._cond.wait_for(
                    lambda: (not self._pending and not self._in_flight) or self._stopping,
                    max(0, rest),
                )
        return self.snapshot()

    # ------------------------------------------------------------ events in

    def _on_fs_event(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return  # readers, including this registry itself
        if event.is_directory:
            if kind in ("created", "deleted", "moved"):
                with self._cond:
                    self._structure = True
                    self._cond.notify_all()
            return
        now = time.monotonic()
        changes = [(Path(os.fsdecode(event.src_path)), kind)]
        if kind == "moved":
            changes = [(changes[0][0], "deleted"), (Path(os.fsdecode(event.dest_path)), "moved")]
        with self._cond:
            for path, what in changes:
                if path in self._watches:
                    self._structure = True
                scope_dir = self._scope_dirs.get(path.parent)
                if scope_dir is None or not scope_dir.owns(path):
                    continue
                writing = self._close_events and what in ("created", "modified")
                self._pending[path] = _Pending(now, writing)  # replaces any confirmation
            self._cond.notify_all()

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            paths, structure, sync = batch
            try:
                self._process(paths, structure=structure, sync=sync)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one failure
                self._failed(exc, sync)

    def _delay(self, pending: _Pending) -> float:
        if pending.writing:
            return self.max_wait_s
        return self.confirm_s if pending.confirm else self.debounce_s

    def _next_batch(self) -> tuple[dict[Path, str | None], bool, int] | None:
        while not self._stopping:
            now = time.monotonic()
            sync = self._sync_asked if self._sync_asked > self._sync_done else 0
            forced = bool(sync) or self._structure  # skip the quiet time, not the rest
            ready = {
                path: pend.confirm for path, pend in self._pending.items()
                if now - pend.last >= self._delay(pend)
                or (forced and not pend.writing and not pend.confirm)
            }
            if ready or self._structure or sync:
                for path in ready:
                    del self._pending[path]
                self._in_flight.update(ready)
                structure, self._structure = self._structure, False
                return ready, structure, sync
            deadlines = [pend.last + self._delay(pend) for pend in self._pending.values()]
            self._cond.wait(max(0.0, min(deadlines) - now) if deadlines else None)
        return None

    def _process(self, paths: dict[Path, str | None], *, structure: bool, sync: int,
                 initial: bool = False) -> None:
        look = dict(paths)  # path -> hash of a failed read to confirm
        if structure:
            self._refresh_structure()
        if structure or sync:
            with self._cond:  # a file being written, or to confirm, is read at its time
                waiting = set(self._pending)
            look.update({p: None for p in self._all_paths() - waiting if p not in look})
        results = {path: self._examine(path, look[path], initial) for path in sorted(look)}
        with self._cond:
            self._in_flight.difference_update(paths)
            changes: list[_Change] = []
            for path, result in results.items():
                if path in self._pending:
                    continue  # changed again while being read: its next version comes next
                if result is _UNSTABLE:
                    self._pending[path] = _Pending(time.monotonic())
                    continue
                if result[0] == "confirm":
                    self._pending[path] = _Pending(time.monotonic(), confirm=result[1])
                    continue
                change = self._commit(path, result)
                if change is not None:
                    changes.append(change)
            events: list[ReloadEvent] = []
            if changes or structure or initial:
                registry = self._compose(self.project)
                events = self._classify(changes, registry, initial)
                # A folder event that changed nothing (a cache written beside the specs, say)
                # is not a new version: the generation counts versions of the registry.
                if changes or initial or not self._same(registry):
                    self._registry = registry
                    self._generation += 1
                    events = [dataclasses.replace(e, generation=self._generation)
                              for e in events]
                    self._events.extend(events)
            if sync:
                self._sync_done = max(self._sync_done, sync)
            self._cond.notify_all()
            subscribers = list(self._subscribers)
        self._deliver(events, subscribers)

    def _same(self, registry: Registry) -> bool:
        before = self._registry
        return (before is not None and registry.spec_hashes() == before.spec_hashes()
                and registry.diagnostics == before.diagnostics)

    def _deliver(self, events: list[ReloadEvent], subscribers: list) -> None:
        for event in events:
            for fn in subscribers:
                with contextlib.suppress(Exception):  # a subscriber's bug must not stop reloads
                    fn(event)

    def _failed(self, exc: Exception, sync: int) -> None:
        event = ReloadEvent("error", "", "", "", "", error=ReloadError(
            "", None, f"the live registry failed: {type(exc).__name__}: {exc}"))
        with self._cond:
            self._events.append(event)
            self._in_flight.clear()  # the batch failed: nothing is being read any more
            if sync:
                self._sync_done = max(self._sync_done, sync)
            self._cond.notify_all()
            subscribers = list(self._subscribers)
        self._deliver([event], subscribers)

    # ------------------------------------------------------------ files

    def _examine(self, path: Path, confirm: str | None, initial: bool) -> tuple:
        scope_dir = self._scope_dirs.get(path.parent)
        if scope_dir is None or not scope_dir.owns(path) or not path.is_file():
            return _MISSING
        digest = _digest(path)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return _UNSTABLE
        # Written a moment ago: a writer may be between truncating and writing, and its events
        # may still be on their way. The file's own clock says so whatever the event delays.
        # (The first load reads everything: a file being written then is read again later.)
        if not initial and 0 <= age < self.debounce_s:
            return _UNSTABLE
        cached = self._files.get(path)
        if cached is not None and digest is not None and cached.hash == digest:
            return _SAME
        spec, problems = scope_dir.load(path)
        # Read twice (hash, then parse): a file that changed in between is read again later.
        if spec is not None and spec.content_hash != digest:
            return _UNSTABLE
        if spec is None:
            if _digest(path) != digest:
                return _UNSTABLE
            if not initial and confirm != digest:
                return ("confirm", digest)  # an editor's half-done save parses badly too
        return ("read", digest or "", scope_dir, spec, problems)

    def _commit(self, path: Path, result: tuple) -> _Change | None:
        old = self._files.get(path)
        if result is _MISSING:
            if old is None:
                return None
            self._put(path, None)
            return _Change("removed", path, old, None)
        if result is _SAME:
            return None
        _, digest, scope_dir, spec, problems = result
        if spec is not None:
            new = _File(scope_dir, spec, problems, digest)
            self._put(path, new)
            return _Change("added" if old is None else "reloaded", path, old, new)
        new = _File(scope_dir, old.spec if old is not None else None, problems, digest)
        self._put(path, new)
        return _Change("error", path, old, new)

    def _put(self, path: Path, f: _File | None) -> None:
        folder = self._folders.setdefault(path.parent, {})
        if f is None:
            self._files.pop(path, None)
            folder.pop(path.name, None)
        else:
            self._files[path] = f
            folder[path.name] = (path, f)

    def _compose(self, project: Project | None) -> Registry:
        def files(scope_dir: ScopeDir) -> list[LoadedFile]:  # in path order, as on disk
            found = [entry for folder, d in self._scope_dirs.items() if d == scope_dir
                     for entry in self._folders.get(folder, {}).values()]
            return [(path, f.spec, f.problems) for path, f in sorted(found)]

        return build_registry(self.ws, project, files)

    def _classify(self, changes: list[_Change], registry: Registry,
                  initial: bool) -> list[ReloadEvent]:
        errors, active = _first_errors(registry), _active(registry)
        others: dict[str, tuple[dict, dict]] = {}  # other projects' standing (all_projects)
        events: list[ReloadEvent] = []
        for change in changes:
            f = change.new or change.old
            assert f is not None
            path = str(change.path)
            name = f.spec.name if f.spec is not None else change.path.stem
            base = dict(path=path, kind=f.scope_dir.kind, name=name, scope=f.scope_dir.scope)
            if change.new is None:
                events.append(ReloadEvent("removed", **base))
                continue
            p_errors, p_active = errors, active
            if f.scope_dir.folder not in self._main_folders:
                folder = f.scope_dir.folder.parent
                if folder.name not in others:
                    reg = self._compose(Project(folder.name, folder))
                    others[folder.name] = (_first_errors(reg), _active(reg))
                p_errors, p_active = others[folder.name]
            spec = p_active.get(path)
            in_effect = spec.content_hash if spec is not None else ""
            file_error = next((d for d in change.new.problems if d.severity == "error"), None)
            diag = file_error or p_errors.get(path)
            event = "error" if diag is not None else change.event
            if initial and event != "error":
                continue
            events.append(ReloadEvent(
                event, hash=change.new.hash, active_hash=in_effect,
                error=ReloadError.from_diagnostic(diag) if diag is not None else None, **base))
        # Files that did not change but whose standing did: an agent whose tool was removed,
        # a clash between two files, and those problems going away.
        touched = {str(c.path) for c in changes}
        for path in sorted(set(errors) | set(self._errors)):
            f = self._files.get(Path(path))
            if path in touched or f is None:
                continue
            new, old = errors.get(path), self._errors.get(path)
            if new == old:
                continue
            name = f.spec.name if f.spec is not None else Path(path).stem
            base = dict(path=path, kind=f.scope_dir.kind, name=name, scope=f.scope_dir.scope,
                        hash=f.hash, active_hash=active[path].content_hash if path in active
                        else "")
            if new is not None:
                events.append(ReloadEvent("error", error=ReloadError.from_diagnostic(new),
                                          **base))
            elif path in active and not initial:
                events.append(ReloadEvent("reloaded", **base))
        self._errors = errors
        return events
