"""The project's error types.

Every error a user can cause (a bad file, a bad param, a bad checkpoint) is one of
these, carries the offending path or param name in its message, and is turned into
a one-line message and a non-zero exit by the stage runner.
"""

from __future__ import annotations


class AdvinterpError(Exception):
    """Base class for errors caused by input, not by a bug in advinterp."""


class ParamError(AdvinterpError, ValueError):
    """A value in params.yaml is missing, of the wrong type or out of range."""


class DatasetError(AdvinterpError, ValueError):
    """A dataset directory or file is missing, malformed or inconsistent."""


class CheckpointError(AdvinterpError, ValueError):
    """A weights file is missing, corrupt, unsafe or of the wrong architecture."""


class StoreError(AdvinterpError, ValueError):
    """A zarr artifact is missing, incomplete or does not have the expected schema."""
