"""Finding libfanoise.so and declaring the C prototypes of include/fanoise.h.

Every function of the header is declared here once, with its argument and result types, so that
ctypes converts and checks arguments instead of guessing (a guessed int result would truncate
pointers and size_t values on 64-bit machines).
"""
import ctypes
import ctypes.util
import os
import subprocess

from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int,
                    c_int32, c_size_t, c_uint, c_uint8, c_uint64, c_void_p)

ENV_LIBRARY = "FANOISE_LIBRARY"
# The SONAME carries the major version; a system install provides it even without the
# development symlink libfanoise.so.
SONAME = "libfanoise.so.0"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# bindings/python/fanoise -> the repository root, whose lib/ holds the build tree's library.
BUILD_TREE_LIBRARY = os.path.normpath(
    os.path.join(_PACKAGE_DIR, os.pardir, os.pardir, os.pardir, "lib", "libfanoise.so"))


class _Opaque(Structure):
    """Stands for an opaque handle type; only pointers to it are ever used."""


class fan_net(_Opaque):
    pass


class fan_optimizer(_Opaque):
    pass


class fan_dataset(_Opaque):
    pass


class fan_iter(_Opaque):
    pass


class fan_allocator(Structure):
    _fields_ = [("alloc", CFUNCTYPE(c_void_p, c_void_p, c_size_t)),
                ("free", CFUNCTYPE(None, c_void_p, c_void_p)),
                ("ud", c_void_p)]


class fan_create_options(Structure):
    _fields_ = [("struct_size", c_size_t),
                ("alloc", POINTER(fan_allocator)),
                ("errmsg", POINTER(c_char)),
                ("errmsg_cap", c_size_t),
                ("max_load_bytes", c_uint64)]


def create_options(errmsg_buffer=None, max_load_bytes=0):
    """A fan_create_options with the default allocator, the given message buffer (a ctypes
    string buffer, or None) and load budget (0: the library's default)."""
    o = fan_create_options()
    o.struct_size = ctypes.sizeof(fan_create_options)
    if errmsg_buffer is not None:
        o.errmsg = ctypes.cast(errmsg_buffer, POINTER(c_char))
        o.errmsg_cap = len(errmsg_buffer)
    o.max_load_bytes = max_load_bytes
    return o


class fan_progress(Structure):
    _fields_ = [("struct_size", c_size_t),
                ("step", c_size_t),
                ("total_steps", c_size_t),
                ("epoch", c_size_t),
                ("batch_in_epoch", c_size_t),
                ("samples", c_size_t),
                ("loss", c_double),
                ("epoch_loss", c_double),
                ("end_of_epoch", c_int),
                # appended in 0.2
                ("lr", c_double),
                ("val_loss", c_double),
                ("val_accuracy", c_double),
                ("best_val_loss", c_double),
                ("best_epoch", c_size_t),
                ("validated", c_int)]


class fan_train_options(Structure):
    _fields_ = [("struct_size", c_size_t),
                ("validation", POINTER(fan_dataset)),
                ("patience", c_size_t),
                ("restore_best", c_int),
                ("min_delta", c_double)]


PROGRESS_FN = CFUNCTYPE(c_int, POINTER(fan_progress), c_void_p)
# fan_gradient_hook: returns a fan_status (an int).
GRADIENT_HOOK = CFUNCTYPE(c_int, POINTER(fan_net), c_void_p)

# Enumerations travel as C int (their underlying type with gcc and clang for these ranges).
c_enum = c_int
status = c_enum

NET = POINTER(fan_net)
OPT = POINTER(fan_optimizer)
DS = POINTER(fan_dataset)
IT = POINTER(fan_iter)
ALLOC = POINTER(fan_allocator)
COPTS = POINTER(fan_create_options)
F32 = POINTER(c_float)
F64 = POINTER(c_double)
I32 = POINTER(c_int32)
SZ = POINTER(c_size_t)
U64 = POINTER(c_uint64)

# name: (restype, argtypes). Keep in the header's order; test_header.py checks that every
# function the header declares is listed here.
PROTOTYPES = {
    # Version and status
    "fan_strerror": (c_char_p, [status]),
    "fan_version_number": (c_uint, []),
    "fan_version_string": (c_char_p, []),
    "fan_rule_name": (c_char_p, [c_enum]),
    "fan_activation_name": (c_char_p, [c_enum]),
    "fan_loss_name": (c_char_p, [c_enum]),
    "fan_optimizer_kind_name": (c_char_p, [c_enum]),
    "fan_init_name": (c_char_p, [c_enum]),
    # Network
    "fan_net_create": (status, [POINTER(NET), SZ, c_size_t, ALLOC]),
    "fan_net_create_ex": (status, [POINTER(NET), SZ, c_size_t, COPTS]),
    "fan_net_free": (None, [NET]),
    "fan_net_errmsg": (c_char_p, [NET]),
    "fan_net_set_rule": (status, [NET, c_enum]),
    "fan_net_rule": (c_enum, [NET]),
    "fan_net_set_activation": (status, [NET, c_size_t, c_enum]),
    "fan_net_activation": (c_enum, [NET, c_size_t]),
    "fan_net_set_loss": (status, [NET, c_enum]),
    "fan_net_loss": (c_enum, [NET]),
    "fan_net_set": (status, [NET, c_enum, c_double]),
    "fan_net_get": (status, [NET, c_enum, F64]),
    "fan_net_set_initializer": (status, [NET, c_enum, c_enum]),
    "fan_net_init": (status, [NET, c_uint64, c_uint64]),
    "fan_net_seeds": (status, [NET, U64, U64]),
    "fan_net_clone": (status, [POINTER(NET), NET]),
    "fan_net_clone_ex": (status, [POINTER(NET), NET, COPTS]),
    "fan_net_num_layers": (c_size_t, [NET]),
    "fan_net_layer_inputs": (c_size_t, [NET, c_size_t]),
    "fan_net_layer_outputs": (c_size_t, [NET, c_size_t]),
    "fan_net_input_size": (c_size_t, [NET]),
    "fan_net_output_size": (c_size_t, [NET]),
    "fan_net_num_params": (c_size_t, [NET]),
    "fan_net_get_weights": (status, [NET, c_size_t, F32, c_size_t, F32, c_size_t]),
    "fan_net_set_weights": (status, [NET, c_size_t, F32, c_size_t, F32, c_size_t]),
    "fan_net_feedback_shape": (status, [NET, c_size_t, SZ, SZ]),
    "fan_net_get_feedback": (status, [NET, c_size_t, F32, c_size_t]),
    "fan_net_set_feedback": (status, [NET, c_size_t, F32, c_size_t]),
    "fan_net_mirror": (status, [NET, c_size_t, c_size_t, c_double, c_double, c_uint64]),
    "fan_net_forward": (status, [NET, F32, c_size_t, F32, c_size_t]),
    "fan_net_compute_gradients": (status, [NET, F32, I32, c_size_t, F32]),
    "fan_net_compute_gradients_targets": (status, [NET, F32, F32, c_size_t, F32]),
    "fan_net_get_gradients": (status, [NET, c_size_t, F32, c_size_t, F32, c_size_t]),
    "fan_net_set_gradients": (status, [NET, c_size_t, F32, c_size_t, F32, c_size_t]),
    "fan_net_parameters": (status, [NET, POINTER(F32), SZ]),
    "fan_net_gradients": (status, [NET, POINTER(F32), SZ]),
    "fan_net_loss_value": (status, [NET, F32, I32, c_size_t, F64]),
    "fan_net_save": (status, [NET, c_char_p]),
    "fan_net_load": (status, [POINTER(NET), c_char_p, ALLOC]),
    "fan_net_save_mem": (status, [NET, c_void_p, c_size_t, SZ]),
    "fan_net_load_mem": (status, [POINTER(NET), c_void_p, c_size_t, ALLOC]),
    "fan_net_load_v2": (status, [POINTER(NET), c_char_p, c_void_p, c_size_t, ALLOC,
                                 POINTER(c_char), c_size_t]),
    "fan_net_load_ex": (status, [POINTER(NET), c_char_p, COPTS]),
    "fan_net_load_mem_ex": (status, [POINTER(NET), c_void_p, c_size_t, COPTS]),
    # Optimizer
    "fan_optimizer_create": (status, [POINTER(OPT), c_enum, NET, ALLOC]),
    "fan_optimizer_create_ex": (status, [POINTER(OPT), c_enum, NET, COPTS]),
    "fan_optimizer_free": (None, [OPT]),
    "fan_optimizer_errmsg": (c_char_p, [OPT]),
    "fan_optimizer_set": (status, [OPT, c_enum, c_double]),
    "fan_optimizer_get": (status, [OPT, c_enum, F64]),
    "fan_optimizer_param_bounds": (status, [c_enum, F64, F64, F64]),
    "fan_optimizer_get_kind": (c_enum, [OPT]),
    "fan_optimizer_steps": (c_uint64, [OPT]),
    "fan_optimizer_scheduled_lr": (status, [OPT, c_uint64, F64]),
    "fan_optimizer_reset": (status, [OPT]),
    "fan_optimizer_save_mem": (status, [OPT, c_void_p, c_size_t, SZ]),
    "fan_optimizer_load_mem": (status, [POINTER(OPT), c_void_p, c_size_t, ALLOC]),
    "fan_optimizer_load_mem_ex": (status, [POINTER(OPT), c_void_p, c_size_t, COPTS]),
    "fan_optimizer_step": (status, [OPT, NET]),
    "fan_net_train_batch": (status, [NET, OPT, F32, I32, c_size_t, F32]),
    "fan_net_train_batch_targets": (status, [NET, OPT, F32, F32, c_size_t, F32]),
    "fan_net_set_gradient_hook": (status, [NET, GRADIENT_HOOK, c_void_p]),
    # Datasets
    "fan_dataset_load_idx": (status, [POINTER(DS), c_char_p, c_char_p, ALLOC]),
    "fan_dataset_load_idx_mem": (status, [POINTER(DS), c_void_p, c_size_t, c_void_p, c_size_t,
                                          ALLOC]),
    "fan_dataset_load_idx_ex": (status, [POINTER(DS), c_char_p, c_char_p, COPTS]),
    "fan_dataset_load_idx_mem_ex": (status, [POINTER(DS), c_void_p, c_size_t, c_void_p,
                                             c_size_t, COPTS]),
    "fan_dataset_load_cifar": (status, [POINTER(DS), POINTER(c_char_p), c_size_t, c_size_t,
                                        ALLOC]),
    "fan_dataset_load_cifar_mem": (status, [POINTER(DS), c_void_p, c_size_t, c_size_t, ALLOC]),
    "fan_dataset_load_cifar_ex": (status, [POINTER(DS), POINTER(c_char_p), c_size_t, c_size_t,
                                           COPTS]),
    "fan_dataset_load_cifar_mem_ex": (status, [POINTER(DS), c_void_p, c_size_t, c_size_t,
                                               COPTS]),
    "fan_dataset_load_csv": (status, [POINTER(DS), c_char_p, c_size_t, c_int, ALLOC]),
    "fan_dataset_load_csv_mem": (status, [POINTER(DS), c_void_p, c_size_t, c_size_t, c_int,
                                          ALLOC]),
    "fan_dataset_load_csv_ex": (status, [POINTER(DS), c_char_p, c_size_t, c_int, COPTS]),
    "fan_dataset_load_csv_mem_ex": (status, [POINTER(DS), c_void_p, c_size_t, c_size_t, c_int,
                                             COPTS]),
    "fan_dataset_from_arrays": (status, [POINTER(DS), F32, I32, c_size_t, c_size_t, c_size_t,
                                         ALLOC]),
    "fan_dataset_from_arrays_ex": (status, [POINTER(DS), F32, I32, c_size_t, c_size_t, c_size_t,
                                            COPTS]),
    "fan_dataset_from_u8": (status, [POINTER(DS), POINTER(c_uint8), I32, c_size_t, c_size_t,
                                     c_size_t, c_size_t, c_size_t, ALLOC]),
    "fan_dataset_from_u8_ex": (status, [POINTER(DS), POINTER(c_uint8), I32, c_size_t, c_size_t,
                                        c_size_t, c_size_t, c_size_t, COPTS]),
    "fan_dataset_free": (None, [DS]),
    "fan_dataset_size": (c_size_t, [DS]),
    "fan_dataset_dim": (c_size_t, [DS]),
    "fan_dataset_classes": (c_size_t, [DS]),
    "fan_dataset_errmsg": (c_char_p, [DS]),
    "fan_dataset_shape": (status, [DS, SZ, SZ, SZ]),
    "fan_dataset_set_shape": (status, [DS, c_size_t, c_size_t, c_size_t]),
    "fan_dataset_set_normalization": (status, [DS, c_enum, c_double, c_double]),
    "fan_dataset_compute_stats": (status, [DS, F64, F64]),
    "fan_dataset_get": (status, [DS, c_size_t, F32, c_size_t, I32]),
    "fan_dataset_class_counts": (status, [DS, SZ, c_size_t]),
    "fan_dataset_subset_first": (status, [POINTER(DS), DS, c_size_t]),
    "fan_dataset_subset_first_ex": (status, [POINTER(DS), DS, c_size_t, COPTS]),
    "fan_dataset_subset_random": (status, [POINTER(DS), DS, c_size_t, c_uint64]),
    "fan_dataset_subset_random_ex": (status, [POINTER(DS), DS, c_size_t, c_uint64, COPTS]),
    "fan_dataset_subset_stratified": (status, [POINTER(DS), DS, c_size_t, c_uint64]),
    "fan_dataset_subset_stratified_ex": (status, [POINTER(DS), DS, c_size_t, c_uint64, COPTS]),
    "fan_dataset_subset_indices": (status, [POINTER(DS), DS, SZ, c_size_t]),
    "fan_dataset_subset_indices_ex": (status, [POINTER(DS), DS, SZ, c_size_t, COPTS]),
    "fan_dataset_split": (status, [POINTER(DS), POINTER(DS), DS, c_size_t, c_uint64]),
    "fan_dataset_split_ex": (status, [POINTER(DS), POINTER(DS), DS, c_size_t, c_uint64,
                                      COPTS]),
    "fan_dataset_split_stratified": (status, [POINTER(DS), POINTER(DS), DS, c_size_t,
                                              c_uint64]),
    "fan_dataset_split_stratified_ex": (status, [POINTER(DS), POINTER(DS), DS, c_size_t,
                                                 c_uint64, COPTS]),
    "fan_dataset_translate": (status, [POINTER(DS), DS, c_double, c_double]),
    "fan_dataset_translate_ex": (status, [POINTER(DS), DS, c_double, c_double, COPTS]),
    "fan_dataset_rotate": (status, [POINTER(DS), DS, c_double]),
    "fan_dataset_rotate_ex": (status, [POINTER(DS), DS, c_double, COPTS]),
    "fan_dataset_scale": (status, [POINTER(DS), DS, c_double]),
    "fan_dataset_scale_ex": (status, [POINTER(DS), DS, c_double, COPTS]),
    "fan_dataset_resize": (status, [POINTER(DS), DS, c_size_t, c_size_t]),
    "fan_dataset_resize_ex": (status, [POINTER(DS), DS, c_size_t, c_size_t, COPTS]),
    # Iterators
    "fan_iter_create_batches": (status, [POINTER(IT), DS, c_size_t, c_uint64, ALLOC]),
    "fan_iter_create_batches_ex": (status, [POINTER(IT), DS, c_size_t, c_uint64, COPTS]),
    "fan_iter_create_noise": (status, [POINTER(IT), c_size_t, c_size_t, c_size_t, c_uint64,
                                       ALLOC]),
    "fan_iter_create_noise_ex": (status, [POINTER(IT), c_size_t, c_size_t, c_size_t, c_uint64,
                                          COPTS]),
    "fan_iter_set": (status, [IT, c_enum, c_double]),
    "fan_iter_get": (status, [IT, c_enum, F64]),
    "fan_iter_next": (status, [IT, POINTER(F32), POINTER(I32), POINTER(F32), SZ]),
    "fan_iter_reset": (status, [IT]),
    "fan_iter_free": (None, [IT]),
    "fan_iter_get_state": (status, [IT, c_void_p, c_size_t, SZ]),
    "fan_iter_set_state": (status, [IT, c_void_p, c_size_t]),
    "fan_iter_epoch": (c_uint64, [IT]),
    "fan_iter_errmsg": (c_char_p, [IT]),
    "fan_iter_is_noise": (c_int, [IT]),
    "fan_iter_dim": (c_size_t, [IT]),
    "fan_iter_classes": (c_size_t, [IT]),
    "fan_iter_batches_per_epoch": (c_size_t, [IT]),
    # Training loops
    "fan_train": (status, [NET, OPT, IT, c_size_t, PROGRESS_FN, c_void_p]),
    "fan_train_v2": (status, [NET, OPT, IT, c_size_t, POINTER(fan_train_options), PROGRESS_FN,
                              c_void_p]),
    "fan_train_steps": (status, [NET, OPT, IT, c_size_t, PROGRESS_FN, c_void_p]),
    "fan_pretrain_noise": (status, [NET, OPT, IT, c_size_t, PROGRESS_FN, c_void_p]),
    "fan_net_evaluate": (status, [NET, DS, F64, F64]),
    # Checkpoints
    "fan_checkpoint_save": (status, [c_char_p, NET, OPT, IT]),
    "fan_checkpoint_save_mem": (status, [c_void_p, c_size_t, SZ, NET, OPT, IT]),
    "fan_checkpoint_load": (status, [c_char_p, POINTER(NET), POINTER(OPT), POINTER(IT), DS,
                                     ALLOC]),
    "fan_checkpoint_load_mem": (status, [c_void_p, c_size_t, POINTER(NET), POINTER(OPT),
                                         POINTER(IT), DS, ALLOC]),
    "fan_checkpoint_load_ex": (status, [c_char_p, POINTER(NET), POINTER(OPT), POINTER(IT), DS,
                                        COPTS]),
    "fan_checkpoint_load_mem_ex": (status, [c_void_p, c_size_t, POINTER(NET), POINTER(OPT),
                                            POINTER(IT), DS, COPTS]),
    # Diagnostics
    "fan_diag_alignment": (status, [NET, c_size_t, F64, c_size_t, F64, F64]),
    "fan_diag_delta_alignment": (status, [NET, F32, I32, c_size_t, F64, c_size_t]),
    "fan_diag_singular_values": (status, [NET, c_size_t, c_enum, F64, c_size_t]),
    "fan_diag_effective_rank": (status, [NET, c_size_t, c_enum, F64]),
    "fan_diag_spectrum": (status, [NET, c_size_t, c_enum, F64, c_size_t, F64, F64, F64]),
    "fan_diag_participation_ratio": (status, [NET, c_size_t, c_enum, F64]),
    "fan_diag_stable_rank": (status, [NET, c_size_t, c_enum, F64]),
    "fan_diag_principal_angles": (status, [NET, c_size_t, c_size_t, F64, c_size_t]),
    "fan_diag_gram_dimensionality": (status, [NET, c_size_t, DS, c_size_t, F64]),
    "fan_diag_readout": (status, [NET, F32, c_size_t, F64, F64, F64, c_size_t]),
    "fan_diag_calibration_error": (status, [NET, DS, c_size_t, F64]),
    "fan_matrix_singular_values": (status, [F32, c_size_t, c_size_t, F64, c_size_t, ALLOC]),
    "fan_matrix_effective_rank": (status, [F32, c_size_t, c_size_t, F64, ALLOC]),
    "fan_matrix_participation_ratio": (status, [F32, c_size_t, c_size_t, F64, ALLOC]),
    "fan_matrix_stable_rank": (status, [F32, c_size_t, c_size_t, F64, ALLOC]),
    "fan_matrix_angle": (status, [F32, F32, c_size_t, F64]),
    "fan_spectrum_summary": (status, [F64, c_size_t, F64, F64, F64]),
    # NumPy files
    "fan_dataset_load_npy": (status, [POINTER(DS), c_char_p, c_char_p, c_size_t, ALLOC]),
    "fan_dataset_load_npy_ex": (status, [POINTER(DS), c_char_p, c_char_p, c_size_t, COPTS]),
    "fan_dataset_load_npy_mem": (status, [POINTER(DS), c_void_p, c_size_t, c_void_p, c_size_t,
                                          c_size_t, ALLOC]),
    "fan_dataset_load_npy_mem_ex": (status, [POINTER(DS), c_void_p, c_size_t, c_void_p,
                                             c_size_t, c_size_t, COPTS]),
    "fan_net_export_npy": (status, [NET, c_char_p]),
    "fan_net_import_npy": (status, [NET, c_char_p]),
}


def _pkg_config_library():
    """The SONAME in the libdir that pkg-config reports for fanoise, or None."""
    try:
        out = subprocess.run(["pkg-config", "--variable=libdir", "fanoise"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = out.stdout.strip()
    if out.returncode != 0 or not libdir:
        return None
    path = os.path.join(libdir, SONAME)
    return path if os.path.exists(path) else None


def _installed_from_tree():
    """The library of the built source tree this package was pip-installed from (recorded by
    setup.py at build time), or None."""
    try:
        from . import _build_tree
    except ImportError:
        return None
    path = getattr(_build_tree, "LIBRARY", None)
    return path if path and os.path.exists(path) else None


def _candidates():
    """Yields (description, path-or-name) in lookup order: $FANOISE_LIBRARY alone if set; else
    the build tree around this source package, the library pkg-config knows, the build tree the
    package was installed from, then the run-time linker's search (an installed
    libfanoise.so.0)."""
    env = os.environ.get(ENV_LIBRARY)
    if env:
        yield ENV_LIBRARY, env
        return  # an explicit choice is never silently replaced by another copy
    if os.path.exists(BUILD_TREE_LIBRARY):
        yield "build tree", BUILD_TREE_LIBRARY
    found = _pkg_config_library()
    if found:
        yield "pkg-config", found
    found = _installed_from_tree()
    if found:
        yield "build tree at install time", found
    found = ctypes.util.find_library("fanoise")
    if found:
        yield "system (find_library)", found
    yield "system (soname)", SONAME


class _MissingFunction:
    """Stands in for a symbol the loaded library lacks, so that importing still works for
    everything else and the failure names the function when it is called."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def __call__(self, *args):
        raise AttributeError(f"{self.path} does not export {self.name}; is it older than "
                             f"the binding?")


class Library:
    """The loaded shared library with every prototype declared as an attribute."""

    def __init__(self, cdll, path):
        self.cdll, self.path = cdll, path
        self.missing = []
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name, _MissingFunction(name, path))
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)


def load():
    """Loads the library from the first candidate that loads (see _candidates); OSError naming
    every place tried if none does."""
    errors = []
    for where, path in _candidates():
        try:
            return Library(ctypes.CDLL(path), path)
        except OSError as e:
            errors.append(f"{where}: {e}")
    raise OSError("cannot load libfanoise: set FANOISE_LIBRARY to the path of libfanoise.so.0, "
                  "install the library (make install; pkg-config must find fanoise.pc), or "
                  "build it (make) in the tree this package comes from. Tried: " +
                  "; ".join(errors))


lib = load()
