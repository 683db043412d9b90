/*
 * bench_ceiling.c - the GEMM ceiling: cblas_sgemm timed at exactly the shapes one training step
 * runs, so each training row can be stated as a fraction of what its GEMMs alone would allow.
 * This is the only file of the harness that includes cblas.h (the library never exposes it).
 */
#define _GNU_SOURCE /* cblas.h declares the affinity calls with cpu_set_t */
#include "bench.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each shape is timed in CHUNKS chunks of at least CHUNK_SECONDS; the median chunk's time per
   call is the shape's cost. 20 ms is long enough to swamp timer overhead and short enough that
   a burst of load from other processes spoils one chunk, not the median. The quick variant,
   run after every training repetition, uses shorter chunks. */
#define CHUNKS 5
#define CHUNK_SECONDS 0.02
#define QUICK_CHUNK_SECONDS 0.008
/* Calls before timing: faults in the buffers and starts OpenBLAS's threads. */
#define WARMUP_CALLS 3

/* Deterministic fill in [-1, 1): the values do not change the time, only avoid denormals. */
static void fill(float *v, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

typedef struct shape {
    const char *op; /* "forward", "weight_grad" or "delta" */
    size_t layer;
    int ta, tb;
    size_t m, n, k;
} shape;

/* Seconds per call of one row-major sgemm C (m x n) = op(A) (m x k) op(B) (k x n). */
static int time_shape(const shape *s, double chunk_seconds, double *seconds)
{
    const size_t a_len = s->m * s->k, b_len = s->k * s->n, c_len = s->m * s->n;
    float *a = malloc(a_len * sizeof *a), *b = malloc(b_len * sizeof *b),
          *c = malloc(c_len * sizeof *c);
    if (a == NULL || b == NULL || c == NULL) {
        free(a);
        free(b);
        free(c);
        return 1;
    }
    fill(a, a_len, 1);
    fill(b, b_len, 2);
    memset(c, 0, c_len * sizeof *c);
    /* Leading dimensions of the stored (untransposed) row-major matrices. */
    const blasint lda = (blasint)(s->ta ? s->m : s->k), ldb = (blasint)(s->tb ? s->k : s->n);
    const enum CBLAS_TRANSPOSE ta = s->ta ? CblasTrans : CblasNoTrans,
                               tb = s->tb ? CblasTrans : CblasNoTrans;
#define CALL()                                                                                 \
    cblas_sgemm(CblasRowMajor, ta, tb, (blasint)s->m, (blasint)s->n, (blasint)s->k, 1.0f, a,     \
                lda, b, ldb, 0.0f, c, (blasint)s->n)
    for (int i = 0; i < WARMUP_CALLS; i++) CALL();
    double per_call[CHUNKS];
    for (int ch = 0; ch < CHUNKS; ch++) {
        size_t calls = 0;
        const double t0 = bench_now();
        double t;
        do {
            CALL();
            calls++;
            t = bench_now() - t0;
        } while (t < chunk_seconds);
        per_call[ch] = t / (double)calls;
    }
#undef CALL
    *seconds = bench_median(per_call, CHUNKS);
    free(a);
    free(b);
    free(c);
    return 0;
}

double bench_gemm_flops_per_sample(const size_t *sizes, size_t n_sizes)
{
    double flops = 0.0;
    for (size_t l = 0; l + 1 < n_sizes; l++) {
        const double io = (double)sizes[l] * (double)sizes[l + 1];
        flops += 2.0 * io + 2.0 * io + (l > 0 ? 2.0 * io : 0.0);
    }
    return flops;
}

/* The GEMMs of weight layer l in the library's layout: activations n x in, W out x in, errors
   n x out. Layer 0 sends no error down (nothing needs the input's error). Returns the count. */
static size_t layer_shapes(const size_t *sizes, size_t l, size_t batch, shape *out3)
{
    const size_t in = sizes[l], out = sizes[l + 1];
    const shape s[3] = {
        {"forward", l, 0, 1, batch, out, in},     /* Z = H W^T */
        {"weight_grad", l, 1, 0, out, in, batch}, /* dW = D^T H */
        {"delta", l, 0, 0, batch, in, out},       /* D_in = D W (or D B) */
    };
    memcpy(out3, s, sizeof s);
    return l == 0 ? 2 : 3;
}

int bench_gemm_step_time(const size_t *sizes, size_t n_sizes, size_t batch, double *seconds)
{
    double step = 0.0;
    for (size_t l = 0; l + 1 < n_sizes; l++) {
        shape shapes[3];
        const size_t count = layer_shapes(sizes, l, batch, shapes);
        for (size_t i = 0; i < count; i++) {
            double sec = 0.0;
            if (time_shape(&shapes[i], QUICK_CHUNK_SECONDS, &sec) != 0) return 1;
            step += sec;
        }
    }
    *seconds = step;
    return 0;
}

int bench_gemm_step(FILE *f, const size_t *sizes, size_t n_sizes, size_t batch)
{
    fprintf(f, "\"gemms\": [");
    double step = 0.0, step_flops = 0.0;
    int first = 1;
    for (size_t l = 0; l + 1 < n_sizes; l++) {
        shape shapes[3];
        const size_t count = layer_shapes(sizes, l, batch, shapes);
        for (size_t i = 0; i < count; i++) {
            double sec = 0.0;
            if (time_shape(&shapes[i], CHUNK_SECONDS, &sec) != 0) return 1;
            const double fl = 2.0 * (double)shapes[i].m * (double)shapes[i].n * (double)shapes[i].k;
            step += sec;
            step_flops += fl;
            fprintf(f,
                    "%s{\"op\": \"%s\", \"layer\": %zu, \"trans_a\": %d, \"trans_b\": %d, "
                    "\"m\": %zu, \"n\": %zu, \"k\": %zu, \"us\": %.3f, \"gflops\": %.3f}",
                    first ? "" : ", ", shapes[i].op, l, shapes[i].ta, shapes[i].tb, shapes[i].m,
                    shapes[i].n, shapes[i].k, sec * 1e6, fl / sec * 1e-9);
            first = 0;
        }
    }
    fprintf(f, "], \"gemm_step_us\": %.3f, \"flops_per_sample\": %.0f, \"gemm_gflops\": %.3f, "
               "\"limit_samples_per_s\": %.1f",
            step * 1e6, step_flops / (double)batch, step_flops / step * 1e-9,
            (double)batch / step);
    return 0;
}

int bench_gemm_peak(FILE *f, size_t dim)
{
    const shape s = {"square", 0, 0, 0, dim, dim, dim};
    double sec = 0.0;
    if (time_shape(&s, CHUNK_SECONDS, &sec) != 0) return 1;
    fprintf(f, "\"peak_dim\": %zu, \"peak_gflops\": %.3f", dim,
            2.0 * (double)dim * (double)dim * (double)dim / sec * 1e-9);
    return 0;
}

/* Copies a string for JSON: drops quotes, backslashes and control characters, trims spaces. */
static void json_clean(char *dst, size_t cap, const char *src)
{
    size_t j = 0;
    if (src == NULL) src = "unknown";
    while (*src == ' ') src++;
    for (; *src != '\0' && j + 1 < cap; src++) {
        const unsigned char ch = (unsigned char)*src;
        if (ch >= 0x20 && ch != '"' && ch != '\\') dst[j++] = (char)ch;
    }
    while (j > 0 && dst[j - 1] == ' ') j--;
    dst[j] = '\0';
}

void bench_blas_info(FILE *f)
{
    char config[512], core[128];
    json_clean(config, sizeof config, openblas_get_config());
    json_clean(core, sizeof core, openblas_get_corename());
    fprintf(f, "\"openblas_config\": \"%s\", \"openblas_core\": \"%s\", \"openblas_threads\": %d",
            config, core, openblas_get_num_threads());
}
