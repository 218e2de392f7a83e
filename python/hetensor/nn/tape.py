"""The tape of a training forward: what each module's backward needs.

A model in training mode (``model.train()``) records one on its run
(:class:`hetensor.nn.run.Run`): module inputs, the tensors the layers save
with ``run.save`` and, per module, whether anything trainable ran before it.
"""

from __future__ import annotations

from typing import Any, Dict


def has_trainable(module: Any) -> bool:
    """Whether ``module`` or a descendant holds a trainable weight."""
    for m in module.modules():
        for name in m.__dict__.get("_trainable", ()):
            if m._params.get(name) is not None:
                return True
    return False


class Tape:
    """What one training forward recorded for its backward."""

    def __init__(self) -> None:
        self.inputs: Dict[int, Any] = {}
        self.saved: Dict[int, Dict[Any, Dict[str, Any]]] = {}
        self.need_dx: Dict[int, bool] = {}
        self.output: Any = None
        #: a backward calibration pass records the range of every backward site (plain mode)
        self.calibrating = False
        self._seen_trainable = False
        self._trainable: Dict[int, bool] = {}

    def _is_trainable(self, module: Any) -> bool:
        key = id(module)
        if key not in self._trainable:
            self._trainable[key] = has_trainable(module)
        return self._trainable[key]

    def enter(self, module: Any, x: Any) -> None:
        self.inputs[id(module)] = x
        self.need_dx[id(module)] = self._seen_trainable

    def exit(self, module: Any, y: Any) -> None:
        if self._is_trainable(module):
            self._seen_trainable = True

    def save(self, module: Any, group: Any, tensors: Dict[str, Any]) -> None:
        self.saved.setdefault(id(module), {}).setdefault(group, {}).update(tensors)

    def get(self, module: Any, group: Any) -> Dict[str, Any]:
        try:
            return self.saved[id(module)][group]
        except KeyError:
            raise RuntimeError(f"{type(module).__name__} saved nothing under {group!r} in the last training forward; "
                               f"run the forward in training mode (model.train()) before model.backward") from None
