"""The errors the library raises on purpose, and what each means to a front end.

Library code raises these and never exits; front ends map them with :func:`outcome`:
the CLI to an exit code, a web app to an HTTP status. Anything else that escapes the
library is a bug (:data:`UNEXPECTED`): the CLI says so and exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class PortraitStylizeError(Exception):
    """Base of every error the library raises on purpose."""


class InputError(PortraitStylizeError, ValueError):
    """An input (image, mask, texture, checkpoint) cannot be read, written or used; the
    message names the file and the reason."""


class SettingsError(PortraitStylizeError, ValueError):
    """A setting is unknown or out of range; the message names it, and so does ``field``
    (None when no single setting is at fault), e.g. for a web form to mark."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[SettingsError], tuple[str, str | None]]:
        return type(self), (str(self), self.field)


class WeightsError(PortraitStylizeError, RuntimeError):
    """A weight file could not be obtained or failed verification."""


class DeviceError(PortraitStylizeError, RuntimeError):
    """The device asked for is not available on this machine."""


class ExtraMissing(PortraitStylizeError, RuntimeError):
    """A command needs an optional extra (``pip install 'portrait-stylize[EXTRA]'``) that
    is not installed; the message names the command, the extra and how to install it."""


class Cancelled(PortraitStylizeError):
    """The run was cancelled (Ctrl-C twice, or by its caller) before it had a result."""


@dataclass(frozen=True)
class Outcome:
    """What a front end reports for an error: CLI exit code and HTTP status."""

    exit_code: int
    http_status: int


OUTCOMES: dict[type[PortraitStylizeError], Outcome] = {
    InputError: Outcome(2, 400),
    SettingsError: Outcome(2, 400),
    WeightsError: Outcome(3, 503),
    # Exit 2 like a bad option (the user picks another --device); 503 for a web app,
    # since it is the worker, not the job, that lacks the device.
    DeviceError: Outcome(2, 503),
    # Exit 2 like a bad option (install the extra, or leave the option out); a web app
    # never gets here, 501 says the server lacks it.
    ExtraMissing: Outcome(2, 501),
    Cancelled: Outcome(130, 409),
}
UNEXPECTED = Outcome(1, 500)
"""Any other exception: a bug."""
CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), 127)}
"""Control characters (a newline, a terminal escape) as a message shows them."""


def printable(text: str) -> str:
    """``text`` a user gave (a name, a file name) as it may stand in a one-line message:
    its control characters escaped."""
    return text.translate(CONTROL)


def outcome(error: BaseException) -> Outcome:
    """The exit code and HTTP status of ``error`` (its nearest class in :data:`OUTCOMES`)."""
    for cls in type(error).__mro__:
        if cls in OUTCOMES:
            return OUTCOMES[cls]
    return UNEXPECTED
