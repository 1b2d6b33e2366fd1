"""Name -> object registries for baselines, data sets, metrics and losses.

A decorator registers; a lookup of an unknown name fails with "did you mean ...".
Registries may name a module to import on first use, so that plugins living outside
``bench`` (the top-level ``baselines`` package) register themselves lazily.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from bench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders, each with a metadata dict."""

    def __init__(self, kind: str, autoload: tuple[str, ...] = ()):
        self.kind = kind
        self._autoload = autoload
        self._loaded = not autoload
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name", key=value)``."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for mod in self._autoload:
                # "package.module" is imported (it registers itself); "package.module:function" is also called
                mod_name, _, fn = mod.partition(":")
                module = importlib.import_module(mod_name)
                if fn:
                    getattr(module, fn)()

    def known(self, name: str) -> bool:
        """Is ``name`` registered already (without importing the autoload modules)?"""
        return name in self._items

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise self._miss(name) from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def _miss(self, name: str) -> UnknownNameError:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return UnknownNameError(
            f"Unknown {self.kind} '{name}'.{hint}",
            fix=f"Run 'bench ls {self.kind}s' to see the {len(self._items)} registered names.",
        )

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)


BASELINES: Registry[Callable[..., Any]] = Registry(
    "baseline", autoload=("baselines", "bench.experiment.user_baselines:load_entry_points"))
DATASETS: Registry[Callable[..., Any]] = Registry("dataset", autoload=("bench.data",))
METRICS: Registry[Callable[..., Any]] = Registry("metric", autoload=("bench.evaluate.metrics",))
LOSSES: Registry[Callable[..., Any]] = Registry("loss", autoload=("bench.losses",))
#: The paper's tables and figures (``bench.paper``), by name: "table1" ... "table4", "figure7".
PAPER: Registry[Callable[..., Any]] = Registry("paper target", autoload=("bench.paper",))
#: How a render job writes its files, by layout name: each paper target's, and "experiment" for users' files.
LAYOUTS: Registry[Callable[..., Any]] = Registry("layout", autoload=("bench.report.experiment", "bench.paper"))
