"""Processes forked to help another (a build's workers, a load's readers) end when it ends."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1  # prctl(2)


def end_with_parent(parent: int) -> None:
    """In a process just forked from `parent`: have Linux send it SIGTERM, with its default
    action (the end, not the parent's handler it inherited), when `parent` ends, SIGKILL
    included; or end now if `parent` already has (it died before the request). A helper waiting
    for work would otherwise wait for ever, an orphan holding what it inherited (the records'
    files, a build's lock). Elsewhere than Linux, nothing is asked."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)
