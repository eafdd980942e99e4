"""``CheckConfig``: every option of one run of the verdict engine, validated once at the boundary
(``validate``), with errors that list the valid values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._coords import DEFAULT_BUDGET, validate_coords

R = TypeVar("R")


def replaced(record: R, **changes: Any) -> R:
    """``dataclasses.replace(record, **changes)`` for a dataclass whose fields are all init
    fields, built from its ``__dict__`` without replace's walk over the fields (a few µs, paid
    on every small check): the same new record.

    >>> replaced(CheckConfig(seed=1), budget=10).seed, replaced(CheckConfig(), budget=10).budget
    (1, 10)
    """
    return type(record)(**{**vars(record), **changes})


SCHEMES = ("central", "forward", "backward", "richardson", "complex")
SchemeName = Literal["central", "forward", "backward", "richardson", "complex"]


@dataclass(frozen=True)
class CheckConfig:
    """The options of one run of the engine (``core.verdict.run``), as ``validate`` made them.

    ``refine=False`` keeps first-pass estimates only, at exactly the forced step (what
    ``numerical_gradient`` and the sweep measure); ``coords`` and ``budget`` choose the
    coordinates (``core._coords.select``); ``batched_loss`` and ``executor`` how J is evaluated.

    >>> config = validate(eps={"W": 1e-6}, scheme="central", seed=0)
    >>> config.eps_value("W"), config.eps_value("b"), config.coords
    (1e-06, None, 'all')
    """

    eps: float | Mapping[str, float] | None = None
    scheme: str = "central"
    seed: int = 0
    rtol: dict[np.dtype, float] = field(default_factory=dict)
    atol: dict[np.dtype, float] = field(default_factory=dict)
    coords: Any = "all"
    budget: int = DEFAULT_BUDGET
    refine: bool = True
    batched_loss: Callable[[np.ndarray], Any] | None = None
    executor: Any = None
    progress: bool | None = False

    def selecting(
        self,
        *,
        coords: Any,
        budget: Any,
        batched_loss: Callable[[np.ndarray], Any] | None = None,
        executor: Any = None,
        progress: bool | None = False,
    ) -> CheckConfig:
        """This config with the coordinates and the evaluation chosen (``coords`` and
        ``budget`` validated here, as ``validate`` does)."""
        coords = _check_coords(coords, budget, self.scheme)
        return replaced(self, coords=coords, budget=budget, batched_loss=batched_loss,
                        executor=executor, progress=progress)

    def options(self) -> dict[str, Any]:
        """The options a report records (JSON-ready): ``check``'s own keywords, which with the
        same version reproduce the check.

        >>> validate(eps=1e-6, scheme="central", seed=3, rtol={"float32": 1e-3}).options()
        {'seed': 3, 'eps': 1e-06, 'scheme': 'central', 'rtol': {'float32': 0.001}, 'atol': {}, \
'coords': 'all', 'budget': 4000}
        """
        eps: Any = self.eps
        if isinstance(eps, Mapping):
            eps = {str(k): float(v) for k, v in eps.items()}
        elif eps is not None:
            eps = float(eps)
        coords = self.coords
        if isinstance(coords, np.generic):
            coords = coords.item()
        return {
            "seed": int(self.seed), "eps": eps, "scheme": self.scheme,
            "rtol": {np.dtype(k).name: float(v) for k, v in self.rtol.items()},
            "atol": {np.dtype(k).name: float(v) for k, v in self.atol.items()},
            "coords": coords, "budget": int(self.budget),
        }

    def eps_value(self, name: str) -> float | None:
        """The forced step for parameter ``name`` (None: the automatic step)."""
        return self.eps.get(name) if isinstance(self.eps, Mapping) else self.eps


def validate(
    *,
    eps: Any,
    scheme: Any,
    seed: Any,
    rtol: Any = None,
    atol: Any = None,
    coords: Any = "all",
    budget: Any = DEFAULT_BUDGET,
    refine: bool = True,
    batched_loss: Callable[[np.ndarray], Any] | None = None,
    executor: Any = None,
    progress: bool | None = False,
) -> CheckConfig:
    """The ``CheckConfig`` of these options, or ``OptionError`` naming the first invalid one."""
    if scheme not in SCHEMES:
        raise OptionError(
            f"scheme={scheme!r} is not a known scheme. Valid values: "
            + ", ".join(repr(s) for s in SCHEMES)
            + "."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise OptionError(f"seed={seed!r} must be an int (it seeds gradcheck's own generator).")
    if seed < 0:
        raise OptionError(
            f"seed={seed!r} must be a non-negative int such as 0 (NumPy's generators take "
            "seeds >= 0)."
        )
    return CheckConfig(
        eps=_check_eps(eps),
        scheme=scheme,
        seed=int(seed),
        rtol=_by_dtype(rtol, "rtol"),
        atol=_by_dtype(atol, "atol"),
        coords=_check_coords(coords, budget, scheme),
        budget=budget,
        refine=bool(refine),
        batched_loss=batched_loss,
        executor=executor,
        progress=progress,
    )


def _check_coords(coords: Any, budget: Any, scheme: str) -> Any:
    validate_coords(coords, budget)
    if coords == "directional" and scheme == "complex":
        raise OptionError(
            "coords='directional' uses central differences along random directions and "
            "cannot be combined with scheme='complex'; use coords='all' or a sample."
        )
    return coords


def _positive(value: Any, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{what}={value!r} must be a positive float.") from None
    if not (math.isfinite(x) and x > 0):
        raise OptionError(
            f"{what}={value!r} must be a positive, finite float (for example 1e-6); "
            "or leave eps=None to let gradcheck choose it per parameter."
        )
    return x


def _check_eps(eps: Any) -> float | dict[str, float] | None:
    if eps is None:
        return None
    if isinstance(eps, Mapping):
        out = {str(k): _positive(v, f"eps[{k!r}]") for k, v in eps.items()}
        if len(out) != len(eps):
            raise OptionError(
                f"eps={dict(eps)!r} has keys that collide as names ({', '.join(map(repr, eps))}): "
                "key eps by the parameter names, e.g. {'W1': 1e-6}."
            )
        return out
    return _positive(eps, "eps")


def check_eps_names(eps: float | Mapping[str, float] | None, names: tuple[str, ...]) -> None:
    """An eps dict keyed by names that are not parameters would be silently ignored: refuse it.

    >>> check_eps_names({"W": 1e-6}, ("W", "b"))
    >>> check_eps_names({"w": 1e-6}, ("W", "b"))
    Traceback (most recent call last):
    ...
    gradcheck._errors.OptionError: eps['w'] names no parameter (they are 'W', 'b'); ...
    """
    if not isinstance(eps, Mapping):
        return
    unknown = [k for k in eps if k not in names]
    if unknown:
        raise OptionError(
            f"eps[{unknown[0]!r}] names no parameter (they are "
            f"{', '.join(repr(n) for n in names)}); key eps by those names (a parameter left "
            "out gets the automatic step)."
        )


def _by_dtype(table: Any, what: str) -> dict[np.dtype, float]:
    """``{np.float32: 1e-5}`` or ``{"float32": 1e-5}``; a bare float applies to every dtype."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        value = _tolerance(table, what)
        return {np.dtype(d): value for d in ("float16", "float32", "float64")}
    out: dict[np.dtype, float] = {}
    for key, value in table.items():
        try:
            dtype = np.dtype(key)
        except TypeError:
            raise OptionError(
                f"{what} key {key!r} is not a dtype. Use keys such as np.float32 or 'float64'."
            ) from None
        if dtype.kind != "f":
            raise OptionError(f"{what} key {key!r} must be a floating dtype (float16/32/64).")
        out[dtype] = _tolerance(value, f"{what}[{key!r}]")
    return out


def _tolerance(value: Any, what: str) -> float:
    """A tolerance: one non-negative finite number (0 allowed), not an array."""
    if np.ndim(value) != 0 or isinstance(value, bool | str | bytes):
        raise OptionError(
            f"{what}={value!r} must be one number (e.g. 1e-5), not "
            f"{type(value).__name__}; for a tolerance per dtype pass a dict such as "
            "{np.float32: 1e-5, np.float64: 1e-9}."
        )
    try:
        if float(value) == 0:
            return 0.0
    except (TypeError, ValueError):
        raise OptionError(f"{what}={value!r} must be a non-negative float such as 1e-5.") from None
    return _positive(value, what)
