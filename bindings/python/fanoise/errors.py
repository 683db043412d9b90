"""FanoiseError: a failed call, with the library's status and the handle's detail message."""
from ._lib import lib
from .constants import Status


def strerror(status):
    """The library's static text for a status code."""
    return lib.fan_strerror(int(status)).decode()


class FanoiseError(Exception):
    """Raised when a libfanoise call fails. status is a Status; message the detail text."""

    def __init__(self, status, message):
        try:
            status = Status(status)
        except ValueError:
            pass  # a newer library may return codes this binding does not name yet
        self.status = status
        self.message = message
        super().__init__(status, message)

    def __str__(self):
        name = self.status.name if isinstance(self.status, Status) else str(self.status)
        return f"{name}: {self.message}"


class FanoiseValueError(FanoiseError, ValueError):
    """An argument the binding refuses before calling the library: a value out of range, a
    negative size, an array of the wrong shape, a label that is not an integer. Also a
    FanoiseError (status E_INVALID, E_SHAPE or E_LABEL); the message names the argument."""


class FanoiseTypeError(FanoiseError, TypeError):
    """An argument of a type the binding cannot convert (a string where numbers are expected, a
    float where an integer is). Also a FanoiseError (status E_INVALID); the message names the
    argument."""


def check(st, errmsg_fn=None, handle=None, what=None):
    """Raises FanoiseError unless st is OK (or DONE / STOPPED / EARLY_STOPPED: not errors).

    The message is the handle's fan_*_errmsg text when there is a handle; constructors that fail
    have none, so their message is the call's name and the status text.
    """
    if st in (Status.OK, Status.DONE, Status.STOPPED, Status.EARLY_STOPPED):
        return Status(st)
    msg = ""
    if errmsg_fn is not None and handle is not None:
        raw = errmsg_fn(handle)
        msg = raw.decode(errors="replace") if raw else ""
    if not msg:
        msg = strerror(st)
    if what:
        msg = f"{what}: {msg}"
    raise FanoiseError(st, msg)
