"""The model owner's file: the plaintext weights of the linear layers a server runs.

A model file maps tensor names to arrays, as a torch state dict does:
``NAME.weight`` (out x in, torch's convention: ``y = x W^T + b``) and an
optional ``NAME.bias`` (out). Every 2-D ``*.weight`` is a layer named
``NAME``. Formats: ``.safetensors`` (needs the ``safetensors`` package) and
``.npz`` (numpy, loaded without pickle). Weights are checked finite and
converted to float64; the client never receives them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


@dataclass(frozen=True)
class LinearWeights:
    """One remote linear layer: ``weight`` (out x in) and ``bias`` (out) or None."""

    name: str
    weight: np.ndarray
    bias: Optional[np.ndarray] = None

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def describe(self) -> dict:
        """What a client may know of the layer: its shape, not its values."""
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}


def _read(path: PathLike) -> Dict[str, np.ndarray]:
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"model file {p!r} does not exist")
    if p.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError("reading .safetensors needs the safetensors package: "
                              "pip install 'hetensor[remote]'") from None
        return dict(load_file(p))
    if p.endswith(".npz"):
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    raise ValueError(f"model file {p!r}: use a .safetensors or .npz file of NAME.weight / NAME.bias arrays")


def layers_from_arrays(arrays: Mapping[str, np.ndarray], layers: Optional[Iterable[str]] = None,
                       *, source: str = "the model") -> Dict[str, LinearWeights]:
    """The linear layers of a name -> array mapping (see the module docstring).

    ``layers`` keeps only those names (each must exist); default: every
    2-D ``*.weight``. Raises ``ValueError`` on a non-finite weight, a bias of
    the wrong length or an unknown layer name.
    """
    found: Dict[str, LinearWeights] = {}
    for key, w in arrays.items():
        if not key.endswith(".weight") or np.ndim(w) != 2:
            continue
        name = key[: -len(".weight")]
        if not _NAME.match(name):
            raise ValueError(f"{source}: layer name {name!r} has characters outside [A-Za-z0-9_.-]")
        wt = np.ascontiguousarray(np.asarray(w, dtype=np.float64))
        b = arrays.get(name + ".bias")
        bt = None
        if b is not None:
            bt = np.ascontiguousarray(np.asarray(b, dtype=np.float64).reshape(-1))
            if bt.shape != (wt.shape[0],):
                raise ValueError(f"{source}: {name}.bias has {bt.size} entries, the weight has {wt.shape[0]} rows")
        if not np.all(np.isfinite(wt)) or (bt is not None and not np.all(np.isfinite(bt))):
            raise ValueError(f"{source}: layer {name!r} has non-finite weights")
        if min(wt.shape) < 1:
            raise ValueError(f"{source}: layer {name!r} has an empty weight {wt.shape}")
        found[name] = LinearWeights(name, wt, bt)
    if layers is None:
        if not found:
            raise ValueError(f"{source} has no linear layer (no 2-D NAME.weight array)")
        return found
    wanted = list(layers)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ValueError(f"{source} has no layer {missing}; it has {sorted(found)}")
    return {n: found[n] for n in wanted}


def load_layers(path: PathLike, layers: Optional[Sequence[str]] = None) -> Dict[str, LinearWeights]:
    """The linear layers of a model file (``.safetensors`` or ``.npz``); ``layers`` selects some."""
    return layers_from_arrays(_read(path), layers, source=f"model file {os.fspath(path)!r}")


def save_layers(path: PathLike, layers: Mapping[str, tuple]) -> None:
    """Write ``{name: (weight, bias or None)}`` as a model file (``.safetensors`` or ``.npz``)."""
    arrays: Dict[str, np.ndarray] = {}
    for name, (w, b) in layers.items():
        arrays[f"{name}.weight"] = np.ascontiguousarray(np.asarray(w, dtype=np.float64))
        if b is not None:
            arrays[f"{name}.bias"] = np.ascontiguousarray(np.asarray(b, dtype=np.float64))
    layers_from_arrays(arrays, source="save_layers")  # the same checks as the loader
    p = os.fspath(path)
    if p.endswith(".safetensors"):
        try:
            from safetensors.numpy import save_file
        except ImportError:
            raise ImportError("writing .safetensors needs the safetensors package: "
                              "pip install 'hetensor[remote]'") from None
        save_file(arrays, p)
    elif p.endswith(".npz"):
        np.savez(p, **arrays)
    else:
        raise ValueError(f"model file {p!r}: use a .safetensors or .npz name")
