"""Exceptions raised by hetensor.

Every error says what was wrong and how to fix it. Value problems (shapes,
levels, contexts, ranges) are ``ValueError``; these classes add the cases a
caller may want to catch on their own.
"""

from __future__ import annotations

from typing import Iterable, List


class SecurityError(ValueError):
    """Parameters do not meet the 128-bit HomomorphicEncryption.org bound.

    Pass ``allow_insecure=True`` (tests only) or choose a secure preset.
    """


class FormatError(ValueError):
    """Serialized data that cannot be loaded: not a hetensor object, another
    format version, truncated or corrupt bytes (checksum, sizes, residues),
    or an object made under other parameters or keys than the context given.
    """


class MissingKeyError(KeyError):
    """A rotation (Galois) key that the operation needs was not generated.

    ``steps`` lists the rotation steps whose keys are missing; generate them
    with ``ctx.generate_rotation_keys(err.steps)``.
    """

    def __init__(self, message: str, steps: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.steps: List[int] = list(steps)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message
