"""Shared lifetime logic of the handle classes."""
from .constants import Status
from .errors import FanoiseError, check


class Handle:
    """Owns one C handle: freed by close(), by leaving a with-block, or on garbage collection.

    Subclasses set _free (the fan_*_free function) and _errmsg (fan_*_errmsg).
    """

    _free = None
    _errmsg = None
    _ptr = None

    def __init__(self, ptr):
        self._ptr = ptr

    @property
    def ptr(self):
        """The C handle; raises if the object was closed."""
        if self._ptr is None:
            raise FanoiseError(Status.E_STATE, f"{type(self).__name__} is closed")
        return self._ptr

    @property
    def closed(self):
        """True once close() has run (or a with-block ended)."""
        return self._ptr is None

    def close(self):
        """Frees the C handle now. Idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            type(self)._free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        # During interpreter shutdown the module's globals may already be gone.
        try:
            self.close()
        except Exception:
            pass

    def _check(self, st, what=None):
        return check(st, type(self)._errmsg, self._ptr, what)
