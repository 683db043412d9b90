/*
 * npy_internal.h - the .npy format of NumPy, shared by npy.c (the format and the dataset loader)
 * and npy_net.c (a net's matrices as .npy files). Never installed.
 *
 * A .npy file (NumPy's "NEP 1" format, versions 1.0 to 3.0) is: the magic "\x93NUMPY", two version
 * bytes, the header length (u16 for 1.0, u32 for 2.0 and 3.0, little-endian), a header that is a
 * Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with spaces
 * and a newline, then the array's bytes.
 */
#ifndef FAN_NPY_INTERNAL_H
#define FAN_NPY_INTERNAL_H

#include "fileio.h"
#include "internal.h"

/* Largest header accepted: NumPy itself refuses headers above 10,000 bytes unless told otherwise,
   and a real header is under 200 bytes; this bound keeps hostile headers cheap. */
#define FAN__NPY_MAX_HEADER 65536u
/* NumPy's own limit on the number of dimensions (NPY_MAXDIMS). */
#define FAN__NPY_MAX_DIMS 32

/* Element types the library reads or writes. */
typedef enum fan__npy_type {
    FAN__NPY_F32 = 0,
    FAN__NPY_F64 = 1,
    FAN__NPY_U8 = 2,
    FAN__NPY_INT = 3 /* any little-endian integer: see is_signed, itemsize */
} fan__npy_type;

/* A parsed header. */
typedef struct fan__npy_header {
    fan__npy_type type;
    size_t itemsize;
    int is_signed;
    size_t ndim;
    size_t shape[FAN__NPY_MAX_DIMS];
    size_t count;       /* product of shape (1 for a 0-d array) */
    size_t data_bytes;  /* count * itemsize */
    size_t data_offset; /* bytes before the array */
    char descr[16];     /* as written in the file, for messages */
} fan__npy_header;

/* Where the bytes come from: a memory buffer or a file opened through the file layer (read
   sequentially). */
typedef struct fan__npy_src {
    const unsigned char *mem;
    size_t mem_len, pos;
    fan__file f;      /* f.fd is -1 for a memory source */
    uint64_t size;    /* total input size in bytes */
    const char *name; /* file name or "buffer", for messages */
} fan__npy_src;

/* Opens path for reading through the file layer: a regular file only (a directory, FIFO or
   device is FAN_E_IO). */
fan_status fan__npy_open(fan__npy_src *s, const char *path, char *err);
/* A source over len bytes at buf. */
void fan__npy_open_mem(fan__npy_src *s, const void *buf, size_t len, const char *name);
/* Closes the file of a file source (a memory source has nothing to close). */
void fan__npy_close(fan__npy_src *s);

/*
 * Reads and checks the magic, version and header: FAN_E_FORMAT (not .npy, bad header),
 * FAN_E_VERSION, FAN_E_UNSUPPORTED (Fortran order, a dtype outside fan__npy_type, big-endian),
 * FAN_E_LIMIT (header too long, a shape whose size overflows), FAN_E_IO. The position is left at
 * the first data byte. Allocates nothing.
 */
fan_status fan__npy_read_header(fan__npy_src *s, fan__npy_header *h, char *err);
/* Checks that the input holds exactly the array the header describes, no byte less or more
   (FAN_E_FORMAT); callers check the shape against their own bounds first, so that a huge shape
   is reported as such rather than as a short file. */
fan_status fan__npy_check_data(const fan__npy_src *s, const fan__npy_header *h, char *err);

/* Reads the next n elements of a float32 or float64 array as float. FAN_E_NONFINITE for NaN or
   infinity, after conversion (a float64 beyond float's range is infinite). */
fan_status fan__npy_read_floats(fan__npy_src *s, const fan__npy_header *h, float *dst, size_t n,
                                char *err);

/*
 * Writes a C-order little-endian float32 array of the given shape (at most FAN__NPY_MAX_DIMS
 * dimensions, product not overflowing) to path atomically, through fan__save_atomic as every
 * file the library writes. al provides the save's scratch memory.
 */
fan_status fan__npy_write_f32(const char *path, const float *data, const size_t *shape,
                              size_t ndim, const fan_allocator *al, char *err);

#endif /* FAN_NPY_INTERNAL_H */
