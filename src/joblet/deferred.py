"""Modules that libraries import at start-up but a process of ours never (or
rarely) uses, imported so that their code runs only when first touched.

`import grpc` costs ~130 ms, half of it for `asyncio` (cygrpc imports it but
uses it only for grpc.aio) and `grpc.aio` (grpc's `__init__` imports it last);
protobuf's descriptor pool imports its pure-Python message class (and with it
text_format and the Python codecs) even when the C implementation, upb, is the
one in use. `rnx` makes one or two synchronous calls and the daemon never uses
the Python message class: paying for those at every start, in time and in
resident memory, is waste.

`defer_imports(names)` installs a finder in front of `sys.meta_path`. When one
of the names is imported, the import system creates the module as usual (its
parent package is imported first and the module bound on it), but its code is
not run: the module holds only its import metadata (`__name__`, `__spec__`,
`__path__`, ...). The first read of any other attribute runs the module, in
the same module object, and returns the attribute. Code that uses the module
sees no difference except when it pays for the import.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any

# What `rnx` never needs from grpc and protobuf (see the module docstring).
UNUSED_BY_SYNC_CLIENT = (
    "asyncio",
    "grpc.aio",
    "google.protobuf.internal.python_message",
)
# What the daemon and its helpers import but never use while idle: protobuf's
# Python message class (upb is used), and the version lookup and the HTTP
# client of the host metrics (only a MonitoringService call or cloud metadata
# needs them; they bring email, http and zipfile along).
UNUSED_BY_DAEMON_AT_IDLE = (
    "google.protobuf.internal.python_message",
    "importlib.metadata",
    "urllib.request",
    # shutil (argparse's help formatter imports it) imports both only to learn
    # which archive formats exist; an archive that needs one loads it then
    "bz2",
    "lzma",
)

_load_lock = threading.RLock()


class _DeferredModule(types.ModuleType):
    """A module whose code has not run yet; see the module docstring."""

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the module does not have (yet).
        with _load_lock:
            if type(self) is _DeferredModule:
                # Switch first: the module's own code, and the imports it
                # triggers, read attributes of this very module while it runs.
                self.__class__ = types.ModuleType  # type: ignore[assignment]
                loader = self.__spec__.loader  # type: ignore[union-attr]
                try:
                    loader.exec_module(self)  # type: ignore[union-attr]
                except BaseException:
                    sys.modules.pop(self.__name__, None)  # a later import retries it
                    raise
        return getattr(self, name)


class _DeferringLoader:
    """Creates the module as the real loader would, but does not run it."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return self._real.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: types.ModuleType) -> None:
        # From now on the module names its real loader, which runs it later.
        module.__loader__ = self._real
        if module.__spec__ is not None:
            module.__spec__.loader = self._real
        module.__class__ = _DeferredModule


class _DeferringFinder:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in self.names:
            return None
        self.names.discard(name)  # one module, deferred once
        spec = PathFinder.find_spec(name, path, target)
        # Only Python source or bytecode can wait: an extension module's
        # initialisation is its creation.
        if spec is None or not hasattr(spec.loader, "get_code"):
            return spec
        spec.loader = _DeferringLoader(spec.loader)  # type: ignore[assignment]
        return spec


_finder = _DeferringFinder()


def defer_imports(names: Iterable[str]) -> None:
    """Defer the code of `names` (module names) that are not imported yet."""
    _finder.names.update(name for name in names if name not in sys.modules)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def is_deferred(name: str) -> bool:
    """True while module `name` is imported but its code has not run."""
    return type(sys.modules.get(name)) is _DeferredModule
