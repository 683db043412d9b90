"""Shared lifetime logic of the handle classes.

Threads: every C call on a handle runs with that handle's lock held (a re-entrant lock, so a
training callback may call back into the handles its loop uses), and so do the calls that free
it. The C library allows one handle to be used by one thread at a time; the binding makes that
so for any Python program, instead of leaving it to the caller, because ctypes releases the GIL
during every foreign call and two threads on one handle would otherwise corrupt it (the
interpreter dies in free()). Serialising was chosen over raising: a program that shares a net
between a training thread and a monitoring thread keeps working, only without overlap. A call
that involves several handles (a training step: net and optimizer; a batch: iterator and its
dataset) takes their locks in one global order, so two such calls cannot deadlock each other.

A training loop also pins the handles it runs on: closing any of them from a callback raises
FanoiseError(E_STATE) instead of freeing memory the loop still uses; from another thread, close
waits until the loop has returned.
"""
import threading

from .constants import Status
from .errors import FanoiseError, check


class _Held:
    """Holds the locks of some handles and of the handles they depend on (an iterator's
    dataset), acquired in order of id() and released in reverse."""

    def __init__(self, handles):
        seen = {}
        for h in handles:
            seen[id(h)] = h
            for d in h._deps():
                seen[id(d)] = d
        self.handles = [seen[k] for k in sorted(seen)]

    def __enter__(self):
        taken = []
        try:
            for h in self.handles:
                h._lock.acquire()
                taken.append(h)
        except BaseException:
            for h in reversed(taken):
                h._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        for h in reversed(self.handles):
            h._lock.release()
        return False


class using:
    """Context manager: holds the locks of the given handles (and their dependencies) and
    yields their C pointers, raising FanoiseError(E_STATE) if one is closed. With pin=True the
    handles cannot be closed until the block ends (a running training loop)."""

    def __init__(self, *handles, pin=False):
        self.held = _Held(handles)
        self.handles, self.pin = handles, pin

    def __enter__(self):
        self.held.__enter__()
        try:
            ptrs = tuple(h._live() for h in self.handles)
        except BaseException:
            self.held.__exit__(None, None, None)
            raise
        if self.pin:
            for h in self.held.handles:
                h._loops += 1
        return ptrs

    def __exit__(self, *exc):
        if self.pin:
            for h in self.held.handles:
                h._loops -= 1
        return self.held.__exit__(*exc)


class Handle:
    """Owns one C handle: freed by close(), by leaving a with-block, or on garbage collection.

    Subclasses set _free (the fan_*_free function) and _errmsg (fan_*_errmsg).
    """

    _free = None
    _errmsg = None
    _ptr = None

    def __init__(self, ptr):
        self._lock = threading.RLock()
        self._loops = 0  # running training loops that use this handle
        self._ptr = ptr

    def _deps(self):
        """Other handles that every C call on this one also uses."""
        return ()

    def _live(self):
        """The C pointer; the caller holds the lock. Raises if the object was closed."""
        if self._ptr is None:
            raise FanoiseError(Status.E_STATE, f"{type(self).__name__} is closed")
        return self._ptr

    @property
    def ptr(self):
        """The C handle; raises if the object was closed."""
        with self._lock:
            return self._live()

    @property
    def closed(self):
        """True once close() has run (or a with-block ended)."""
        return self._ptr is None

    def _check_not_in_loop(self):
        if self._loops:
            raise FanoiseError(Status.E_STATE,
                               f"{type(self).__name__} is in use by a running training loop; "
                               f"close it after the loop has returned")

    def close(self):
        """Frees the C handle now. Idempotent."""
        with self._lock:
            self._check_not_in_loop()
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

    def _call(self, fn, *args):
        """fn(this handle's pointer, *args) with the locks of this handle and of every Handle in
        args (passed as their pointers) held."""
        handles = [a for a in args if isinstance(a, Handle)]
        with using(self, *handles) as ptrs:
            it = iter(ptrs[1:])
            cargs = [next(it) if isinstance(a, Handle) else a for a in args]
            return fn(ptrs[0], *cargs)

    def _checked(self, fn, *args, what=None):
        """As _call, then raises FanoiseError with this handle's message (read before the locks
        are released) unless the status is OK, DONE or STOPPED."""
        handles = [a for a in args if isinstance(a, Handle)]
        with using(self, *handles) as ptrs:
            it = iter(ptrs[1:])
            cargs = [next(it) if isinstance(a, Handle) else a for a in args]
            return check(fn(ptrs[0], *cargs), type(self)._errmsg, ptrs[0], what)

    def _check(self, st, what=None):
        return check(st, type(self)._errmsg, self._ptr, what)
