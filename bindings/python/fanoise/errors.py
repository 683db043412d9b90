"""FanoiseError: a failed call, with the library's status and the handle's detail message."""
from ._lib import lib
from .constants import Status


def strerror(status):
    """The library's static text for a status code."""
    return lib.fan_strerror(int(status)).decode()


class FanoiseError(Exception):
    """Raised when a libfanoise call fails. status is a Status; message the detail text.

    FanoiseError(status, message) gives an instance of the subclass that also derives from the
    matching built-in exception, so that code catching ValueError, MemoryError, OSError or
    ArithmeticError catches the library's errors of that kind: FanoiseValueError (bad arguments,
    shapes, labels, non-finite input, malformed or oversized data), FanoiseMemoryError
    (E_NOMEM), FanoiseOSError (E_IO), FanoiseArithmeticError (E_NUMERIC). Other statuses
    (E_STATE, E_LAPACK, E_UNSUPPORTED, codes newer than the binding) stay FanoiseError.
    """

    def __new__(cls, status, message=""):
        if cls is FanoiseError:
            cls = _SUBCLASS.get(status, FanoiseError)
        try:
            return super().__new__(cls, status, message)
        except TypeError:
            # MemoryError's own __new__ serves MemoryError alone; a subclass that shares
            # BaseException's layout is created by Exception's.
            return Exception.__new__(cls, status, message)

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
    """A FanoiseError that is also a ValueError: an argument the binding refuses before calling
    the library (a value out of range, a negative size, an array of the wrong shape, a label that
    is not an integer; the message names the argument), or one the library refuses (E_NULL,
    E_INVALID, E_SHAPE, E_LABEL, E_NONFINITE, E_LIMIT) or malformed data (E_FORMAT, E_VERSION,
    E_CHECKSUM)."""


class FanoiseTypeError(FanoiseError, TypeError):
    """An argument of a type the binding cannot convert (a string where numbers are expected, a
    float where an integer is). Also a FanoiseError (status E_INVALID); the message names the
    argument."""


class FanoiseMemoryError(FanoiseError, MemoryError):
    """A FanoiseError that is also a MemoryError: the allocator returned NULL (E_NOMEM)."""


class FanoiseOSError(FanoiseError, OSError):
    """A FanoiseError that is also an OSError: a file could not be opened, read, written or
    renamed (E_IO)."""

    def __init__(self, status, message):
        # OSError's own constructor would read (status, message) as (errno, strerror).
        FanoiseError.__init__(self, status, message)


class FanoiseArithmeticError(FanoiseError, ArithmeticError):
    """A FanoiseError that is also an ArithmeticError: training produced a non-finite loss or
    update, which was not applied (E_NUMERIC)."""


_SUBCLASS = {int(s): c for c, statuses in (
    (FanoiseValueError, (Status.E_NULL, Status.E_INVALID, Status.E_SHAPE, Status.E_LABEL,
                         Status.E_NONFINITE, Status.E_LIMIT, Status.E_FORMAT, Status.E_VERSION,
                         Status.E_CHECKSUM)),
    (FanoiseMemoryError, (Status.E_NOMEM,)),
    (FanoiseOSError, (Status.E_IO,)),
    (FanoiseArithmeticError, (Status.E_NUMERIC,))) for s in statuses}


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
