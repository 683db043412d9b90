#!/usr/bin/env python3
"""Writes the hand-made seed corpora under tests/fuzz/corpus/<target>/ (deterministic output).

Seeds are small valid files of each format plus one file per class of malformation, so that
fuzzing starts from every branch of interest and replay checks each class on every `make check`.
Inputs that libFuzzer found are committed next to these under their SHA-1 names; this script
only rewrites the files whose names start with "seed-".

Container layouts (see each fuzz_*.c):
  net_load  a model file as is (docs/file-format.md).
  idx       byte 0 flags (bit 0 / bit 1: the target gzips images / labels), bytes 1-2 images length
            (u16 little-endian), the images file, then the labels file.
  cifar     byte 0: n_label_bytes = byte & 3, then the records.
  csv       byte 0 label column (255 = FAN_CSV_LAST_COLUMN, else byte % 8), byte 1 flags
            (bit 0 skip_header, bit 1: the target gzips the text), then the text.
  api       a script of byte-coded API calls (fuzz_api.c); seeds are arbitrary bytes.
  checkpoint  a checkpoint file as is (docs/file-format.md); batch-iterator seeds ran over the
            fixed dataset of fuzz_checkpoint.c, whose fingerprint ck_fingerprint() computes.
  load_path 9 header bytes (loader and gzip flags, kind of path, budget, fault number u16,
            loader argument, flags, length of the first file u16), then the first file and the
            second (fuzz_load_path.c).
"""
import gzip
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- model files (mirrors src/io.c, format version 1) --------------------------------------
MAGIC = b"FANOISE\x1a"


def model(sizes, acts=None, rule=1, loss=0, init_w=0, init_b=0, slope=0.01, seeds=(0, 1),
          version=1, flags=0, fill=None, layers=None, fix_crc=True):
    L = len(sizes) - 1 if layers is None else layers
    acts = acts if acts is not None else [1] * (len(sizes) - 2) + [0]
    out = bytearray(MAGIC)
    out += struct.pack("<IIIIIIIf", version, flags, L, rule, loss, init_w, init_b, slope)
    out += struct.pack("<QQ", *seeds)
    for s in sizes:
        out += struct.pack("<Q", s)
    for a in acts:
        out += struct.pack("<I", a)
    k = 0
    for l in range(len(sizes) - 1):
        wn = sizes[l] * sizes[l + 1]
        for part in (wn, sizes[l + 1], wn):
            for _ in range(part):
                v = fill(k) if fill else ((k * 37 % 17) - 8) / 16.0
                out += struct.pack("<f", v)
                k += 1
    crc = zlib.crc32(bytes(out)) if fix_crc else 0xDEADBEEF
    out += struct.pack("<I", crc)
    return bytes(out)


def net_load_seeds():
    write("net_load", "valid-2-1.fan", model([2, 1], acts=[0]))
    write("net_load", "valid-4-3-2.fan", model([4, 3, 2]))
    write("net_load", "valid-3-5-4-2-bp-mse.fan",
          model([3, 5, 4, 2], acts=[2, 3, 4], rule=0, loss=1, init_w=1, init_b=2, slope=0.2,
                seeds=(12345, 2 ** 64 - 1)))
    write("net_load", "nan-weights.fan", model([2, 2], acts=[0], fill=lambda k: float("nan")))
    write("net_load", "inf-weights.fan", model([2, 2], acts=[0], fill=lambda k: float("inf")))
    good = model([4, 3, 2])
    write("net_load", "bad-magic.fan", b"FANOISX\x1a" + good[8:])
    write("net_load", "bad-crc.fan", good[:-4] + b"\0\0\0\0")
    write("net_load", "truncated-header.fan", good[:40])
    write("net_load", "truncated-body.fan", good[:len(good) // 2])
    write("net_load", "trailing-byte.fan", good + b"\0")
    write("net_load", "empty.fan", b"")
    write("net_load", "version-2.fan", model([4, 3, 2], version=2))
    write("net_load", "flags-set.fan", model([4, 3, 2], flags=1))
    write("net_load", "zero-layers.fan", model([4], acts=[], layers=0))
    write("net_load", "65-layers.fan", model([1] * 66, acts=[0] * 65))
    write("net_load", "width-0.fan", model([4, 0, 2]))
    write("net_load", "width-over-limit.fan", model([2, 1], acts=[0], fill=None)[:56]
          + struct.pack("<QQ", 2 ** 24 + 1, 1) + b"\0" * 64)
    # 2^32 x 2^32 would overflow 32-bit size_t and exceed FAN_MAX_MATRIX on 64-bit.
    write("net_load", "matrix-overflow.fan", MAGIC + struct.pack("<IIIIIIIf", 1, 0, 1, 1, 0, 0, 0,
                                                                  0.01)
          + struct.pack("<QQ", 0, 1) + struct.pack("<QQ", 2 ** 24, 2 ** 24) + b"\0" * 16)
    write("net_load", "bad-activation.fan", model([4, 3, 2], acts=[1, 9]))
    write("net_load", "bad-rule.fan", model([4, 3, 2], rule=7))
    write("net_load", "bad-loss.fan", model([4, 3, 2], loss=2))
    write("net_load", "bad-init.fan", model([4, 3, 2], init_b=3))
    write("net_load", "nan-slope.fan", model([4, 3, 2], slope=float("nan")))
    write("net_load", "slope-above-1.fan", model([4, 3, 2], slope=1.5))


# ---- IDX ----------------------------------------------------------------------------------
def idx_images(n, rows, cols, magic=0x00000803, pixels=None):
    body = pixels if pixels is not None else bytes((i * 29) % 256 for i in range(n * rows * cols))
    return struct.pack(">III", magic, n, rows) + struct.pack(">I", cols) + body


def idx_labels(labels, magic=0x00000801, n=None):
    n = len(labels) if n is None else n
    return struct.pack(">II", magic, n) + bytes(labels)


def idx_pack(images, labels, gz_images=False, gz_labels=False, pre_gzipped=False):
    """gz_* set the flag bits that make the target compress a part; pre_gzipped compresses
    both parts here instead, so the corpus holds real gzip bytes for the fuzzer to mutate."""
    if pre_gzipped:
        images, labels = gz(images), gz(labels)
    flags = (1 if gz_images else 0) | (2 if gz_labels else 0)
    return bytes([flags]) + struct.pack("<H", len(images)) + images + labels


def idx_seeds():
    img = idx_images(3, 4, 4)
    lab = idx_labels([0, 7, 9])
    write("idx", "valid-3x4x4", idx_pack(img, lab))
    write("idx", "valid-gzip-both", idx_pack(img, lab, True, True))
    write("idx", "valid-gzip-images", idx_pack(img, lab, True, False))
    write("idx", "valid-pre-gzipped", idx_pack(img, lab, pre_gzipped=True))
    write("idx", "valid-zlib-images", bytes([0]) + struct.pack("<H", len(zlib.compress(img)))
          + zlib.compress(img) + lab)
    write("idx", "valid-labels-up-to-12", idx_pack(idx_images(2, 2, 3), idx_labels([12, 1])))
    write("idx", "valid-1x1x1", idx_pack(idx_images(1, 1, 1), idx_labels([3])))
    write("idx", "bad-image-magic", idx_pack(idx_images(3, 4, 4, magic=0x00000801), lab))
    write("idx", "bad-label-magic", idx_pack(img, idx_labels([0, 7, 9], magic=0x00000803)))
    write("idx", "swapped-files", idx_pack(lab, img))
    write("idx", "counts-disagree", idx_pack(img, idx_labels([0, 7])))
    write("idx", "label-count-lies", idx_pack(img, idx_labels([0, 7, 9], n=4)))
    write("idx", "truncated-pixels", idx_pack(img[:-5], lab))
    write("idx", "truncated-header", idx_pack(img[:10], lab))
    write("idx", "zero-images", idx_pack(idx_images(0, 4, 4), idx_labels([])))
    write("idx", "zero-rows", idx_pack(idx_images(3, 0, 4, pixels=b""), lab))
    write("idx", "dims-overflow", idx_pack(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 0xFFFFFFFF,
                                                       0xFFFFFFFF), lab))
    write("idx", "huge-count-small-file", idx_pack(struct.pack(">IIII", 0x803, 100000000, 28, 28),
                                                   idx_labels([1], n=100000000)))
    write("idx", "trailing-bytes", idx_pack(img + b"\0\0", lab + b"\1"))
    write("idx", "empty", b"")
    cut = gz(img)[:-9]
    write("idx", "gzip-truncated", bytes([1]) + struct.pack("<H", len(cut)) + cut + lab)
    write("idx", "gzip-garbage", bytes([3]) + struct.pack("<H", 12) + b"\x1f\x8b\x08\0garbage!"
          + b"\x1f\x8b\x08\0more")


# ---- CIFAR --------------------------------------------------------------------------------
def cifar_record(labels):
    return bytes(labels) + bytes((i * 7) % 256 for i in range(3072))


def cifar_seeds():
    write("cifar", "valid-10-one", bytes([1]) + cifar_record([3]))
    write("cifar", "valid-10-two", bytes([1]) + cifar_record([9]) + cifar_record([0]))
    write("cifar", "valid-100-one", bytes([2]) + cifar_record([5, 42]))
    write("cifar", "label-10-in-cifar10", bytes([1]) + cifar_record([10]))
    write("cifar", "label-100-in-cifar100", bytes([2]) + cifar_record([5, 100]))
    write("cifar", "label-255", bytes([1]) + cifar_record([255]))
    write("cifar", "partial-record", bytes([1]) + cifar_record([1])[:1500])
    write("cifar", "record-and-a-half", bytes([1]) + cifar_record([1]) + cifar_record([2])[:9])
    write("cifar", "zero-label-bytes", bytes([0]) + cifar_record([1]))
    write("cifar", "three-label-bytes", bytes([3]) + cifar_record([1]))
    write("cifar", "empty", bytes([1]))


# ---- CSV ----------------------------------------------------------------------------------
def csv(text, col=255, skip=0, gzip_it=False, pre_gzipped=False):
    """gzip_it makes the target compress the text; pre_gzipped stores gzip bytes."""
    data = text.encode() if isinstance(text, str) else text
    if pre_gzipped:
        data = gz(data)
    return bytes([col, (1 if skip else 0) | (2 if gzip_it else 0)]) + data


def csv_seeds():
    rows = "0.5,1,2,0\n3,4.25,-5,1\n6,7,8e-3,2\n"
    write("csv", "valid-last-column", csv(rows))
    write("csv", "valid-gzip", csv(rows, gzip_it=True))
    write("csv", "valid-pre-gzipped", csv(rows, pre_gzipped=True))
    write("csv", "valid-pre-gzipped-header", csv("x,y,z,l\n" + rows, skip=1, pre_gzipped=True))
    write("csv", "valid-header", csv("a,b,c,label\n" + rows, skip=1))
    write("csv", "valid-first-column", csv("1,0.5,2\n0,3,4\n", col=0))
    write("csv", "valid-crlf-no-final-newline", csv("1,2,0\r\n3,4,1"))
    write("csv", "valid-spaces", csv(" 1 , 2 ,0\n3,  4,1\n"))
    write("csv", "nan-value", csv("nan,2,0\n3,4,1\n"))
    write("csv", "inf-value", csv("1,inf,0\n3,-Infinity,1\n"))
    write("csv", "overflow-value", csv("1e999,2,0\n3,4,1\n"))
    write("csv", "negative-label", csv("1,2,-1\n3,4,1\n"))
    write("csv", "fractional-label", csv("1,2,1.5\n3,4,1\n"))
    write("csv", "huge-label", csv("1,2,99999999999\n3,4,1\n"))
    write("csv", "label-over-class-limit", csv("1,2,65536\n3,4,1\n"))
    write("csv", "ragged-rows", csv("1,2,3,0\n3,4,1\n"))
    write("csv", "empty-field", csv("1,,0\n3,4,1\n"))
    write("csv", "text-field", csv("1,abc,0\n3,4,1\n"))
    write("csv", "hex-and-junk", csv("0x10,2,0\n3,4x,1\n"))
    write("csv", "quoted", csv('"1","2",0\n3,4,1\n'))
    write("csv", "blank-lines", csv("1,2,0\n\n3,4,1\n\n"))
    write("csv", "only-header", csv("a,b,label\n", skip=1))
    write("csv", "empty", csv(""))
    write("csv", "label-column-out-of-range", csv("1,2,0\n3,4,1\n", col=5))
    write("csv", "one-column", csv("0\n1\n2\n"))
    write("csv", "nul-bytes", csv(b"1,\x002,0\n3,4,1\n"))
    write("csv", "long-number", csv("1" + "0" * 400 + ",2,0\n3,4,1\n"))
    write("csv", "gzip-garbage", bytes([255, 2]) + b"\x1f\x8b\x08\0garbage")


def api_seeds():
    # fuzz_api.c reads these as a script; a few varied byte patterns give it different shapes.
    write("api", "zeros", bytes(64))
    write("api", "ramp", bytes(range(256)))
    write("api", "ones", b"\x01" * 128)
    write("api", "mixed", bytes((i * 73 + 11) % 256 for i in range(512)))


# ---- checkpoints (mirrors src/checkpoint.c, src/optimizer.c, src/iter.c) ----------------------
def crc_tail(body):
    return body + struct.pack("<I", zlib.crc32(body))


def model_v2(sizes, rule=1, acts=None, state=b"", fb_rows=None):
    """A model file of format version 2: W's shape for B unless fb_rows says otherwise."""
    L = len(sizes) - 1
    acts = acts if acts is not None else [1] * (L - 1) + [0]
    fb_rows = fb_rows if fb_rows is not None else sizes[1:]
    out = bytearray(MAGIC)
    out += struct.pack("<IIIIIIIf", 2, 0, L, rule, 0, 0, 0, 0.01)
    out += struct.pack("<QQ", 0, 1)
    out += b"".join(struct.pack("<Q", s) for s in sizes)
    out += b"".join(struct.pack("<I", a) for a in acts)
    out += b"".join(struct.pack("<Q", r) for r in fb_rows)
    out += struct.pack("<Q", len(state)) + state
    k = 0
    for l in range(L):
        for part in (sizes[l] * sizes[l + 1], sizes[l + 1], fb_rows[l] * sizes[l]):
            for _ in range(part):
                out += struct.pack("<f", ((k * 37 % 17) - 8) / 16.0)
                k += 1
    return crc_tail(bytes(out))


# fan_optimizer_param defaults in order: the first 8 are what the 0.1 library had; schedules
# (8 to 13) came with checkpoints.
OPT_DEFAULTS_V01 = [0.01, 0.0, 0.0, 0.0, 0.9, 0.999, 1e-8, 0.99]
OPT_DEFAULTS = OPT_DEFAULTS_V01 + [0.0, 1.0, 0.1, 1.0, 0.0, 0.0]


def opt_state(sizes, kind=0, hp=None, steps=0, moment=0.0):
    hp = hp if hp is not None else OPT_DEFAULTS
    L = len(sizes) - 1
    n = sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(L))
    out = bytearray(b"FANOPTS\x1a")
    out += struct.pack("<IIIIQQ", 1, kind, len(hp), L, steps, n)
    out += b"".join(struct.pack("<Q", s) for s in sizes)
    out += b"".join(struct.pack("<d", v) for v in hp)
    buffers = 1 if kind == 0 else 2
    out += struct.pack("<f", moment) * (n * buffers)
    return crc_tail(bytes(out))


RNG = (0x0123456789ABCDEF, 0x0F1E2D3C4B5A6978, 0x1111111111111111, 0x2222222222222222)


def iter_common(kind, dim, classes, batch, seed=9, index=0, epochs=0):
    return (b"FANITER\x1a" + struct.pack("<II", 1, kind)
            + struct.pack("<QQQQQQ", dim, classes, batch, seed, index, epochs))


def iter_noise(dim, classes, batch, kind=0, label_mode=0, mean=0.0, std=1.0, index=3):
    body = iter_common(1, dim, classes, batch, index=index)
    body += struct.pack("<IIdd", kind, label_mode, mean, std) + struct.pack("<4Q", *RNG) * 2
    return crc_tail(body)


def iter_batches(dim, classes, batch, size, flags=1 | 8, epochs=2):
    """At an epoch boundary (flag 1), where the position and the two streams are free."""
    body = iter_common(0, dim, classes, batch, epochs=epochs)
    body += struct.pack("<QQI", size, 0, flags) + struct.pack("<4Q", *RNG) * 2
    return crc_tail(body)


CK_N, CK_DIM, CK_CLASSES = 5, 3, 2


def ck_fingerprint():
    samples = b"".join(struct.pack("<f", (i % 7) / 4.0 - 0.5) for i in range(CK_N * CK_DIM))
    labels = b"".join(struct.pack("<i", i % 2) for i in range(CK_N))
    h = zlib.crc32(samples) << 32 | zlib.crc32(labels)
    return struct.pack("<QQQIIddQ", CK_N, CK_DIM, CK_CLASSES, 1, 0, 0.0, 1.0, h)


def checkpoint(net, opt=b"", it=b"", fingerprint=None, version=1, flags=None):
    fp = fingerprint if fingerprint is not None else b"\0" * 56
    if flags is None:
        flags = (1 if opt else 0) | (2 if it else 0) | (4 if fingerprint is not None else 0)
    body = (b"FANCKPT\x1a" + struct.pack("<IIQQQ", version, flags, len(net), len(opt), len(it))
            + fp + net + opt + it)
    return crc_tail(body)


def checkpoint_seeds():
    sizes = [CK_DIM, 4, CK_CLASSES]
    net = model_v2(sizes)
    fp = ck_fingerprint()
    write("checkpoint", "net-only", checkpoint(net))
    write("checkpoint", "sgd-noise", checkpoint(net, opt_state(sizes, steps=7),
                                                iter_noise(CK_DIM, CK_CLASSES, 4)))
    write("checkpoint", "adam-batches", checkpoint(net, opt_state(sizes, kind=1, steps=3,
                                                                  moment=0.25),
                                                   iter_batches(CK_DIM, CK_CLASSES, 2, CK_N), fp))
    write("checkpoint", "rmsprop-uniform-soft-noise",
          checkpoint(net, opt_state(sizes, kind=3), iter_noise(CK_DIM, CK_CLASSES, 2, 1, 1, 0.5,
                                                               2.0)))
    # brSF keeps 32 bytes of rule state; DFA's B has the output count as rows.
    write("checkpoint", "brsf-adamw-batches-drop-last",
          checkpoint(model_v2([CK_DIM, 4, 3, CK_CLASSES], rule=4, state=struct.pack("<4Q", *RNG)),
                     opt_state([CK_DIM, 4, 3, CK_CLASSES], kind=2),
                     iter_batches(CK_DIM, CK_CLASSES, 2, CK_N, flags=1 | 4 | 8), fp))
    write("checkpoint", "dfa-net", checkpoint(model_v2([CK_DIM, 4, 3, CK_CLASSES], rule=2,
                                                       fb_rows=[CK_CLASSES, CK_CLASSES,
                                                                CK_CLASSES])))
    good = checkpoint(net, opt_state(sizes), iter_batches(CK_DIM, CK_CLASSES, 2, CK_N), fp)
    write("checkpoint", "truncated", good[:len(good) // 2])
    write("checkpoint", "bad-magic", b"FANCKPX" + good[7:])
    write("checkpoint", "bad-crc", good[:-4] + b"\0\0\0\0")
    write("checkpoint", "version-2", checkpoint(net, version=2))
    write("checkpoint", "flags-disagree", checkpoint(net, opt_state(sizes), flags=0))
    write("checkpoint", "no-fingerprint-for-batches",
          checkpoint(net, b"", iter_batches(CK_DIM, CK_CLASSES, 2, CK_N)))
    write("checkpoint", "other-dataset",
          checkpoint(net, b"", iter_batches(CK_DIM, CK_CLASSES, 2, CK_N), b"\1" * 56))
    write("checkpoint", "optimizer-for-another-net",
          checkpoint(net, opt_state([CK_DIM, 5, CK_CLASSES])))
    write("checkpoint", "optimizer-newer-hyperparameters",
          checkpoint(net, opt_state(sizes, hp=OPT_DEFAULTS + [1.0])))
    write("checkpoint", "optimizer-without-schedules",
          checkpoint(net, opt_state(sizes, kind=1, hp=OPT_DEFAULTS_V01, steps=2)))
    write("checkpoint", "cosine-warmup-sgd-noise",
          checkpoint(net, opt_state(sizes, hp=OPT_DEFAULTS_V01 + [3.0, 1.0, 0.1, 50.0, 0.001, 10.0],
                                    steps=12), iter_noise(CK_DIM, CK_CLASSES, 4)))
    write("checkpoint", "schedule-not-whole",
          checkpoint(net, opt_state(sizes, hp=OPT_DEFAULTS_V01 + [1.5])))
    write("checkpoint", "noise-of-another-width",
          checkpoint(net, b"", iter_noise(CK_DIM + 1, CK_CLASSES, 4)))
    write("checkpoint", "noise-huge-batch",
          checkpoint(net, b"", iter_noise(CK_DIM, CK_CLASSES, 100000000)))
    write("checkpoint", "empty", b"")


def load_path(loader, files, kind=0, budget=0, fault=0, param=0, param2=0, gz_a=False,
              gz_b=False):
    a = files[0]
    b = files[1] if len(files) > 1 else b""
    flags = loader | (4 if gz_a else 0) | (8 if gz_b else 0)
    return (bytes([flags, kind, budget]) + struct.pack("<H", fault) + bytes([param, param2])
            + struct.pack("<H", len(a)) + a + b)


def load_path_seeds():
    net = model([4, 3, 2])
    write("load_path", "net-regular", load_path(0, [net]))
    for kind, name in ((1, "link"), (2, "directory"), (3, "fifo"), (4, "dangling-link")):
        write("load_path", "net-" + name, load_path(0, [net], kind=kind))
    write("load_path", "net-budget-64", load_path(0, [net], budget=6))
    write("load_path", "net-longer-than-header", load_path(0, [net + bytes(4096)]))
    write("load_path", "net-version-2", load_path(0, [model([4, 3, 2], version=2)]))
    for n in (1, 2, 3, 4, 5):
        write("load_path", "net-fault-%d" % n, load_path(0, [net], fault=n))
    img = idx_images(3, 4, 4)
    lab = idx_labels([0, 7, 9])
    write("load_path", "idx-raw", load_path(1, [img, lab]))
    write("load_path", "idx-gzip", load_path(1, [img, lab], gz_a=True, gz_b=True))
    write("load_path", "idx-gzip-fault-9", load_path(1, [img, lab], gz_a=True, fault=9))
    write("load_path", "idx-budget-32", load_path(1, [img, lab], budget=5))
    write("load_path", "idx-claims-more", load_path(1, [struct.pack(">IIII", 0x803, 100000, 28,
                                                                     28) + bytes(64), lab],
                                                    gz_a=True))
    rec = cifar_record([3])
    write("load_path", "cifar-one", load_path(2, [rec]))
    write("load_path", "cifar-two", load_path(2, [rec, cifar_record([9])], param2=2))
    write("load_path", "cifar-100", load_path(2, [cifar_record([5, 42])], param=1))
    write("load_path", "cifar-fault-7", load_path(2, [rec, rec], param2=2, fault=7))
    rows = b"a,b,c,label\n0.5,1,2,0\n3,4.25,-5,1\n6,7,8e-3,2\n"
    write("load_path", "csv-header", load_path(3, [rows], param=255, param2=1))
    write("load_path", "csv-gzip", load_path(3, [rows], param=255, param2=1, gz_a=True))
    write("load_path", "csv-budget-16", load_path(3, [rows], param=255, param2=1, budget=4))
    write("load_path", "csv-link", load_path(3, [rows], kind=1, param=255, param2=1))
    write("load_path", "csv-fault-4", load_path(3, [rows], param=255, param2=1, fault=4))


def main():
    for name in sys.argv[1:] or ["net_load", "idx", "cifar", "csv", "api", "checkpoint",
                                 "load_path"]:
        globals()[name + "_seeds"]()


if __name__ == "__main__":
    main()
