"""JAX adapter, part 1: the checked leaves of the arguments' pytrees (named by key path), as
the NumPy core sees them (real, finite, non-empty), and the scoped ``jax_enable_x64``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.frameworks import _shared as _adapters
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    pass


@dataclass
class _Problem:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    argnums: tuple[int, ...]
    names: list[str]
    slots: list[tuple[int, int]]  # (argnum, leaf index) of each checked leaf
    leaves: dict[int, list[Any]]
    treedefs: dict[int, Any]
    seed: int
    views: dict[tuple[int, int], _View] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, fn: Callable, args: tuple, argnums: Any, seed: int) -> _Problem:
        import jax
        import jax.numpy as jnp

        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        if not nums or any(not isinstance(a, int) or not -len(args) <= a < len(args) for a in nums):
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}) must name positions of the "
                f"{len(args)} arguments given (an int or a tuple of ints)."
            )
        nums = tuple(a % len(args) for a in nums)  # negative as in jax.grad: -1 is the last
        if len(set(nums)) != len(nums):
            twice = next(a for a in nums if nums.count(a) > 1)
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}) names argument {twice} twice; "
                "give each position once."
            )
        names, slots, leaves, treedefs, views, notes = [], [], {}, {}, {}, []
        for a in nums:
            pairs, treedefs[a] = jax.tree_util.tree_flatten_with_path(args[a])
            leaves[a] = [leaf for _, leaf in pairs]
            keys = _leaf_keys(args[a], [path for path, _ in pairs])
            for i, ((_, leaf), key) in enumerate(zip(pairs, keys, strict=True)):
                # A typed PRNG key (key<fry>) has no NumPy dtype: not a float, left as it is.
                kind = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
                if jnp.issubdtype(kind, jnp.floating) or jnp.issubdtype(kind, jnp.complexfloating):
                    prefix = f"arg{a}" if len(nums) > 1 or not key else ""
                    name = ".".join(p for p in (prefix, key) if p)
                    if np.asarray(leaf).size == 0:  # nothing to perturb: stays as it is
                        notes.append(Note(NoteCode.EMPTY, name, {"shape": np.shape(leaf)}))
                        continue
                    names.append(name)
                    slots.append((a, i))
                    views[(a, i)] = _View(name, np.asarray(leaf))
        if not names and notes:
            return cls(fn, tuple(args), nums, names, slots, leaves, treedefs, seed, views, notes)
        if not names:
            held = [f"arg{a}: {_kind(leaf)}" for a in nums for leaf in leaves[a]][:4]
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}): those arguments hold no "
                "floating-point array, so there is nothing to check ("
                + (", ".join(held) if held else "no leaf at all: None or an empty container")
                + "). Integers and bools have no gradient: pass floats (2.0, "
                "jnp.asarray(x, float)), or point argnums at the parameters."
            )
        notes += [n for v in views.values() for n in v.notes()]
        return cls(fn, tuple(args), nums, names, slots, leaves, treedefs, seed, views, notes)

    def call(self, values: Sequence[Any], cast: Callable[[Any], Any]) -> Any:
        """``fn`` with the checked leaves replaced by ``values`` and the rest cast."""
        import jax

        # A checked argument is rebuilt from its leaves, and a checked leaf is replaced by its
        # value: neither is cast first (a copy put on the device, then dropped).
        checked = set(self.slots)
        args = [a if k in self.argnums else jax.tree_util.tree_map(cast, a)
                for k, a in enumerate(self.args)]
        fresh = {a: [x if (a, i) in checked else cast(x) for i, x in enumerate(self.leaves[a])]
                 for a in self.argnums}
        for (a, i), v in zip(self.slots, values, strict=True):
            fresh[a][i] = self.views[(a, i)].decode(v)
        for a in self.argnums:
            args[a] = jax.tree_util.tree_unflatten(self.treedefs[a], fresh[a])
        return self.fn(*args)

    def originals(self) -> list[np.ndarray]:
        """The checked leaves as the core sees them: real (complex: a last axis of 2), finite."""
        return [self.views[s].real for s in self.slots]

    @property
    def unchecked(self) -> dict[str, np.ndarray]:
        return {v.name: ~v.finite for v in self.views.values() if v.fill is not None}

    @property
    def dtypes(self) -> dict[str, str]:
        """Each checked leaf's own dtype, by name (the report's ``dtype``)."""
        leaves = [self.leaves[a][i] for a, i in self.slots]
        return {n: str(getattr(x, "dtype", None) or np.asarray(x).dtype)
                for n, x in zip(self.names, leaves, strict=True)}

    @property
    def complex(self) -> list[str]:
        return [v.name for v in self.views.values() if v.complex]


def _kind(leaf: Any) -> str:
    """A leaf as an error message shows it: its type and dtype (``int 3``, ``int32[2]``)."""
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return f"{leaf.dtype}{list(np.shape(leaf))}"
    return f"{type(leaf).__name__} {leaf!r}"[:40]


def _leaf_keys(tree: Any, paths: list[tuple]) -> list[str]:
    """Each leaf's key path as a name (``layers.0.W``). A node registered without keys
    (``register_pytree_node``: an equinox-style module, a frozen mapping) only numbers its
    children; such a child is named after the node's attribute that holds it (``w`` rather
    than ``0``) where one does, by identity. Falls back to the plain key paths if that makes
    two names equal."""
    import jax

    def plain(path: tuple) -> str:
        return jax.tree_util.keystr(path, simple=True, separator=".")

    def readable(path: tuple) -> str:
        parts, node = [], tree
        for entry in path:
            child = next(c for k, c in jax.tree_util.flatten_one_level_with_keys(node)[0]
                         if k == entry)
            name = None
            if isinstance(entry, jax.tree_util.FlattenedIndexKey):
                name = _holder(node, child)
            parts.append(name if name is not None else plain((entry,)))
            node = child
        return ".".join(p for p in parts if p)

    names = [plain(p) for p in paths]
    if not any(isinstance(e, jax.tree_util.FlattenedIndexKey) for p in paths for e in p):
        return names
    try:
        better = [readable(p) for p in paths]
    except Exception:  # noqa: BLE001 - an exotic node: keep JAX's own key paths
        return names
    return better if len(set(better)) == len(better) else names


def _holder(node: Any, child: Any) -> str | None:
    """The attribute of ``node`` (or key of a dict attribute) that is ``child``, if one is."""
    fields = dict(getattr(node, "__dict__", {}) or {})
    for slot in getattr(type(node), "__slots__", ()):
        if isinstance(slot, str) and hasattr(node, slot):
            fields.setdefault(slot, getattr(node, slot))
    hits = [n for n, v in fields.items() if v is child and not n.startswith("_")]
    if len(hits) != 1:
        hits = [f"{n}.{k}" for n, v in fields.items() if isinstance(v, dict)
                for k, w in v.items() if w is child and not n.startswith("_")]
    return hits[0] if len(hits) == 1 else None


class _View:
    """One checked leaf as the core sees it: real and finite; ``decode`` turns it back
    (complex from a last axis of 2, ±inf/NaN entries put back) inside the traced function, so
    that ``jax.grad`` maps its gradient onto the same real coordinates by JAX's convention."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self.name = name
        self.complex = np.iscomplexobj(x)
        real = np.stack([x.real, x.imag], axis=-1) if self.complex else np.array(x, copy=True)
        self.finite = np.isfinite(real)
        self.fill = None if self.finite.all() else real
        self.real = np.where(self.finite, real, 0).astype(real.dtype) if self.fill is not None else real

    def decode(self, r: Any) -> Any:
        import jax.numpy as jnp
        from jax import lax

        if self.fill is not None:
            r = jnp.where(self.finite, r, jnp.asarray(self.fill, dtype=r.dtype))
        if self.complex:
            r = lax.complex(r[..., 0], r[..., 1])
        return r

    def notes(self) -> list[str]:
        bad = 0 if self.fill is None else int((~self.finite).sum())
        return _adapters.view_notes(self.name, self.complex, _adapters.JAX[0], bad)


@contextlib.contextmanager
def _x64(enabled: bool) -> Iterator[None]:
    """``jax_enable_x64`` for the duration of the check only, restored after.

    Where the flag was off, JAX's tracing caches are cleared on the way out (``_forget_x64``).
    """
    import jax

    if not enabled or jax.config.jax_enable_x64:
        yield
        return
    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # older JAX
        from jax.experimental import enable_x64 as scope
    try:
        with scope(True):
            yield
    finally:
        _forget_x64()


def _forget_x64() -> None:
    """Clears what JAX 0.10 traced under the scoped x64 and would reuse without it.

    A jaxpr traced inside the scope (``jnp.take``'s inner jit with a NumPy index) keeps its
    64-bit argument types in two staging caches; reused outside, the user's own ``jax.grad``
    fails with "expected s32[5], got s64[5]". Clearing those two costs a re-trace; compiled
    executables stay. Where they cannot be found (another JAX), every cache is cleared.
    """
    import jax

    try:
        from jax._src import pjit
        from jax._src.interpreters import partial_eval

        caches = (pjit._infer_params_cached, partial_eval.trace_to_jaxpr)
        for cache in caches:
            cache.cache_clear()
    except (ImportError, AttributeError):
        jax.clear_caches()


def _cast64(x: Any) -> Any:
    import jax
    import jax.numpy as jnp

    # jnp.issubdtype, not np.dtype: extended dtypes (a typed PRNG key, key<fry>) are no NumPy
    # dtype, and a key is passed as it is.
    for kind, wide in ((jnp.floating, jnp.float64), (jnp.complexfloating, jnp.complex128)):
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, kind):
            if isinstance(x, np.ndarray | np.generic):  # cast in NumPy: nothing compiled
                return jax.device_put(np.asarray(x, dtype=wide))
            return jnp.asarray(x, dtype=wide)
    return x


