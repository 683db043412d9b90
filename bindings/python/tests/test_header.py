"""The binding against include/fanoise.h: constants, prototypes and versions must agree."""
import ctypes
import re
import unittest
from ctypes import (POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_size_t,
                    c_uint, c_uint8, c_uint64, c_void_p)

import support
from support import fanoise
from fanoise import _lib, constants

with open(support.HEADER) as f:
    # Joined continuation lines, comments removed: what the compiler sees.
    RAW = f.read().replace("\\\n", " ")
TEXT = re.sub(r"/\*.*?\*/", " ", RAW, flags=re.S)

ENUMS = {name: dict((m, int(v)) for m, v in re.findall(r"\b(FAN_\w+)\s*=\s*(\d+)", body))
         for name, body in re.findall(r"typedef\s+enum\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", TEXT, re.S)}

DEFINES = dict(re.findall(r"^#define\s+(FAN\w*)[ \t]+(.+?)\s*$", TEXT, re.M))
# Attribute macros are not constants.
DEFINES = {k: v for k, v in DEFINES.items() if "__attribute__" not in v and "[[" not in v}

DECLS = re.findall(r"FAN_API\s+(?:FAN_NODISCARD\s+)?([^;(]*?)\b(fan_\w+)\s*\(([^)]*)\)\s*;",
                   TEXT, re.S)

OPAQUE = {"fan_net": _lib.fan_net, "fan_optimizer": _lib.fan_optimizer,
          "fan_dataset": _lib.fan_dataset, "fan_iter": _lib.fan_iter,
          "fan_allocator": _lib.fan_allocator, "fan_progress": _lib.fan_progress,
          "fan_train_options": _lib.fan_train_options,
          "fan_create_options": _lib.fan_create_options}
SCALARS = {"size_t": c_size_t, "double": c_double, "float": c_float, "uint64_t": c_uint64,
           "int": c_int, "unsigned": c_uint, "int32_t": c_int32, "uint8_t": c_uint8,
           "fan_progress_fn": _lib.PROGRESS_FN, "fan_gradient_hook": _lib.GRADIENT_HOOK}


def define_value(name):
    """Evaluates a numeric or string #define of the header."""
    v = DEFINES[name].strip()
    if v.startswith('"'):
        return v.strip('"')
    if v == "((size_t)-1)":
        return ctypes.c_size_t(-1).value
    v = re.sub(r"\((?:uint64_t|size_t)\)", "", v)  # casts to unsigned types wide enough here
    expr = re.sub(r"\b(FAN\w+)\b", lambda m: str(define_value(m.group(1))), v)
    expr = re.sub(r"(\d+)[uU]\b", r"\1", expr)
    if not re.fullmatch(r"[\d\s()+*<]+", expr):
        raise ValueError(f"cannot evaluate {name} = {v}")
    return eval(expr)  # only digits, spaces, parentheses, +, * and <<


def expected_ctype(decl):
    """The ctypes type that stands for a C type spelled in the header (parameter name removed
    by the caller). Returns a set of acceptable types."""
    t = re.sub(r"\bconst\b", " ", decl)
    stars = t.count("*")
    base = t.replace("*", " ").split()[0]
    if base in ENUMS or base == "fan_status":
        base_t = c_int
    elif base in SCALARS:
        base_t = SCALARS[base]
    elif base in OPAQUE:
        base_t = OPAQUE[base]
    elif base in ("void", "char"):
        base_t = base
    else:
        raise AssertionError(f"unknown C type {decl!r}")
    if stars == 0:
        return {None} if base_t == "void" else {base_t}
    if base_t == "void":
        return {c_void_p} if stars == 1 else {POINTER(c_void_p)}
    if base_t == "char":
        return {c_char_p, POINTER(c_char)} if stars == 1 else {POINTER(c_char_p)}
    t = base_t
    for _ in range(stars):
        t = POINTER(t)
    return {t}


def split_params(params):
    params = params.strip()
    if params in ("", "void"):
        return []
    out = []
    for p in params.split(","):
        p = p.strip()
        m = re.match(r"(.*?[\s*])(\w+)$", p)
        out.append(m.group(1).strip() if m else p)
    return out


class TestConstants(unittest.TestCase):
    def test_header_parse_finds_the_api(self):
        # Guards the parser itself: a regex that matched nothing would make the checks vacuous.
        self.assertGreaterEqual(len(ENUMS), 13)
        self.assertGreaterEqual(len(DECLS), 100)
        self.assertEqual(ENUMS["fan_status"]["FAN_DONE"], 100)

    def test_every_header_enum_constant_matches_the_binding(self):
        binding = constants.c_enum_constants()
        for cname, members in ENUMS.items():
            self.assertIn(cname, constants.C_ENUMS, f"enum {cname} has no Python mirror")
            enum, prefix = constants.C_ENUMS[cname]
            mirrored = {prefix + m.name: int(m) for m in enum}
            self.assertEqual(mirrored, members, f"{cname} differs from {enum.__name__}")
            for name, value in members.items():
                self.assertEqual(binding[name], value, name)
        self.assertEqual(set(constants.C_ENUMS), set(ENUMS), "binding mirrors an enum the "
                                                             "header lacks")

    def test_every_header_define_matches_the_binding(self):
        numeric = {k for k in DEFINES if k != "FANOISE_H"}
        self.assertEqual(numeric, set(constants.C_DEFINES))
        for name in numeric:
            self.assertEqual(define_value(name), constants.C_DEFINES[name], name)

    def test_enum_members_are_exported_at_package_level(self):
        self.assertIs(fanoise.Rule, constants.Rule)
        self.assertEqual(fanoise.Status.E_INVALID, 2)
        self.assertEqual(fanoise.CSV_LAST_COLUMN, ctypes.c_size_t(-1).value)


class TestPrototypes(unittest.TestCase):
    def test_every_header_function_is_declared_in_the_binding(self):
        declared = {name for _, name, _ in DECLS}
        self.assertEqual(declared, set(_lib.PROTOTYPES))

    def test_prototypes_match_header_types(self):
        for ret, name, params in DECLS:
            restype, argtypes = _lib.PROTOTYPES[name]
            with self.subTest(function=name):
                self.assertIn(restype, expected_ctype(ret.strip()), "result type")
                cparams = split_params(params)
                self.assertEqual(len(argtypes), len(cparams), "argument count")
                for i, (a, c) in enumerate(zip(argtypes, cparams)):
                    self.assertIn(a, expected_ctype(c), f"argument {i} ({c})")

    def test_loaded_library_exports_every_function(self):
        self.assertEqual(_lib.lib.missing, [])
        fn = _lib.lib.fan_net_create
        self.assertEqual(fn.argtypes, _lib.PROTOTYPES["fan_net_create"][1])


class TestVersion(unittest.TestCase):
    def test_versions_agree_library_header_binding_makefile(self):
        header = define_value("FANOISE_VERSION_STRING")
        self.assertEqual(fanoise.version_string(), header)
        self.assertEqual(fanoise.__version__, header)
        self.assertEqual(constants.VERSION_STRING, header)
        self.assertEqual(fanoise.version_number(), define_value("FANOISE_VERSION_NUMBER"))
        self.assertEqual(support.make_version(), header)
        major, minor, patch = (int(p) for p in header.split("."))
        self.assertEqual(define_value("FANOISE_VERSION_NUMBER"),
                         major * 10000 + minor * 100 + patch)


class TestStatusText(unittest.TestCase):
    def test_strerror_is_the_librarys_text(self):
        self.assertEqual(fanoise.strerror(fanoise.Status.OK), "success")
        self.assertEqual(fanoise.strerror(999), "unknown status")


if __name__ == "__main__":
    unittest.main()
