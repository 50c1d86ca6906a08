"""The folders the live registry watches: every spec folder of its scopes and each folder
above it up to the workspace root, so a folder created later is seen too."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from llmunix.errors import WorkspaceError
from llmunix.specs.registry import (
    ScopeDir,
    project_scope_dirs,
    scope_dirs,
)


class WatchedFolders:
    """Mixed into LiveRegistry: matching watchdog watches to the folders that exist."""


    def _wanted_dirs(self) -> dict[Path, ScopeDir]:
        dirs = scope_dirs(self.ws, self.project)
        if self.all_projects:
            for proj in self.ws.projects():
                if self.project is None or proj.name != self.project.name:
                    dirs += project_scope_dirs(proj)
        wanted = {d.folder: d for d in dirs}
        for d in dirs:  # files in sub-folders belong to their scope folder
            wanted.update({sub: d for sub in d.subfolders()})
        return wanted

    def _all_paths(self) -> set[Path]:
        with self._cond:
            paths = set(self._files)
            folders = list(self._scope_dirs.items())
        for folder, scope_dir in folders:
            if folder.is_dir():
                paths.update(p for p in folder.glob("*.md") if scope_dir.owns(p))
        return paths

    def _refresh_structure(self) -> None:
        """Match the watches to the folders that exist: each spec folder and every folder
        above it up to the workspace root, so a folder created later is seen too."""
        root = self.ws.root
        for _ in range(10):  # folders may appear while watches are being added: look again
            dirs = self._wanted_dirs()
            with self._cond:
                self._scope_dirs = dirs
            wanted: dict[Path, tuple[int, int]] = {}
            extra = [self.ws.projects_dir] if self.all_projects else []
            for folder in [*dirs, *extra]:
                for d in (folder, *folder.parents):
                    if d != root and root not in d.parents:
                        break
                    try:
                        st = d.stat()
                    except OSError:
                        continue
                    if os.path.isdir(d):
                        wanted[d] = (st.st_dev, st.st_ino)
            changed = False
            for d, (watch, ident) in list(self._watches.items()):
                if wanted.get(d) != ident:  # gone, or a new folder under the same name
                    self._unwatch(d, watch)
                    changed = True
            for d, ident in wanted.items():
                if d not in self._watches:
                    changed = self._watch(d, ident) or changed
            if not changed:
                return

    def _watch(self, folder: Path, ident: tuple[int, int]) -> bool:
        try:
            watch = self._observer.schedule(self._handler, str(folder), recursive=False)
        except FileNotFoundError:
            return True  # removed meanwhile: the next round sees it gone
        except OSError as exc:
            raise WorkspaceError(
                f"cannot watch {folder}: {exc.strerror or exc}",
                hint="on Linux, raise fs.inotify.max_user_watches / max_user_instances",
            ) from exc
        with self._cond:
            self._watches[folder] = (watch, ident)
        return True

    def _unwatch(self, folder: Path, watch: Any) -> None:
        with self._cond:
            self._watches.pop(folder, None)
        with contextlib.suppress(Exception):  # watchdog stops a deleted folder's watch itself
            self._observer.unschedule(watch)
