// fanoise.hpp - C++ interface to libfanoise (C++11 or later), installed next to fanoise.h.
//
// Every function of the C API is reachable here (scripts/hpp-coverage.sh checks it); fanoise.h
// stays the reference for what each does. What this layer adds:
// - Handles own their C object (RAII): Net, Optimizer and Iter are movable, not copyable;
//   Dataset is shared (copies refer to one dataset), because an iterator borrows the dataset it
//   reads, and an Iter keeps that dataset alive for as long as it exists.
// - A failing call throws fanoise::Error, which carries the fan_status and the library's detail
//   message (constructors use the _ex variants, so a failed construction says why too);
//   FAN_DONE, FAN_STOPPED and FAN_EARLY_STOPPED are results, not errors.
// - Arrays are std::vector; a size the library needs is taken from the vector and checked.
// - Progress callbacks are any callable taking const fan_progress & and returning bool (true
//   stops the loop); an exception it throws is caught at the C boundary and rethrown.
// Thread safety is the C library's: distinct objects from distinct threads, one object with
// external locking.
#ifndef FANOISE_HPP
#define FANOISE_HPP

#include "fanoise.h"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanoise {

// ---- errors ----------------------------------------------------------------------------------

/** A failed call: the status and the library's message (or what was being done). */
class Error : public std::runtime_error {
public:
    Error(fan_status status, const std::string &message)
        : std::runtime_error(message.empty() ? std::string(fan_strerror(status))
                                             : message + " (" + fan_strerror(status) + ")"),
          status_(status), message_(message) {}
    fan_status status() const noexcept { return status_; }
    /** The detail message alone, without the status text. */
    const std::string &message() const noexcept { return message_; }

private:
    fan_status status_;
    std::string message_;
};

/**
 * Options of everything that creates a handle: the allocator of the new object (NULL:
 * malloc/free, or for clones and derived datasets the source's) and the load budget of loaders
 * (0: FAN_DEFAULT_MAX_LOAD_BYTES). Converts from an allocator pointer, so `&my_allocator` or
 * nullptr can be passed where CreateOptions is expected.
 */
struct CreateOptions {
    const fan_allocator *alloc;
    uint64_t max_load_bytes;
    CreateOptions(const fan_allocator *a = nullptr, uint64_t max_load = 0)  // NOLINT: implicit
        : alloc(a), max_load_bytes(max_load) {}
};

namespace detail {
// fan_create_options with a message buffer of its own, for the _ex constructors.
struct ex_options {
    fan_create_options o;
    char msg[256];
    explicit ex_options(const CreateOptions &c) : o(), msg() {
        o.struct_size = sizeof o;
        o.alloc = c.alloc;
        o.errmsg = msg;
        o.errmsg_cap = sizeof msg;
        o.max_load_bytes = c.max_load_bytes;
    }
    const fan_create_options *get() const noexcept { return &o; }
};
// Throws for an error status; returns FAN_OK, FAN_DONE, FAN_STOPPED and FAN_EARLY_STOPPED.
inline fan_status check(fan_status st, const char *msg) {
    if (st != FAN_OK && st != FAN_DONE && st != FAN_STOPPED && st != FAN_EARLY_STOPPED)
        throw Error(st, msg != nullptr ? std::string(msg) : std::string());
    return st;
}
inline fan_status check(fan_status st, const std::string &msg) { return check(st, msg.c_str()); }
template <class T>
void check_size(const std::vector<T> &v, std::size_t want, const char *what) {
    if (v.size() != want)
        throw Error(FAN_E_SHAPE, std::string(what) + ": " + std::to_string(v.size()) +
                                     " values, " + std::to_string(want) + " expected");
}
struct net_free { void operator()(fan_net *p) const noexcept { fan_net_free(p); } };
struct optimizer_free { void operator()(fan_optimizer *p) const noexcept { fan_optimizer_free(p); } };
struct dataset_free { void operator()(fan_dataset *p) const noexcept { fan_dataset_free(p); } };
struct iter_free { void operator()(fan_iter *p) const noexcept { fan_iter_free(p); } };

// Calls a C training loop with a C++ callable as its progress callback.
template <class F>
struct trampoline {
    F *fn;
    std::exception_ptr error;
    static int call(const fan_progress *p, void *user) {
        trampoline *self = static_cast<trampoline *>(user);
        try {
            return (*self->fn)(*p) ? 1 : 0;
        } catch (...) {  // never unwind through the library's frames
            self->error = std::current_exception();
            return 1;
        }
    }
};
}  // namespace detail

// ---- status, version, names --------------------------------------------------------------------

inline const char *strerror(fan_status s) noexcept { return fan_strerror(s); }
inline unsigned version_number() noexcept { return fan_version_number(); }
inline const char *version_string() noexcept { return fan_version_string(); }
inline const char *name(fan_rule r) noexcept { return fan_rule_name(r); }
inline const char *name(fan_activation a) noexcept { return fan_activation_name(a); }
inline const char *name(fan_loss l) noexcept { return fan_loss_name(l); }
inline const char *name(fan_optimizer_kind k) noexcept { return fan_optimizer_kind_name(k); }
inline const char *name(fan_init i) noexcept { return fan_init_name(i); }

// ---- results --------------------------------------------------------------------------------------

struct Evaluation { double loss, accuracy; };
struct Alignment { std::vector<double> per_unit; double mean, matrix; };
struct Readout { double mean_max_prob, mean_entropy; std::vector<double> hist; };
struct Spectrum { double effective_rank, participation_ratio, stable_rank; };
struct Shape { std::size_t rows, cols; };
struct ImageShape { std::size_t width, height, channels; };
struct Bounds { double lo, hi, def; };
struct Sample { std::vector<float> x; int32_t label; };
struct Layer { std::vector<float> w, b; };
/** A borrowed block of floats inside a net (valid until the net is freed or reshaped). */
struct FloatView { float *data; std::size_t size; };

// ---- generic spectral functions ------------------------------------------------------------------

inline std::vector<double> matrix_singular_values(const std::vector<float> &a, std::size_t rows,
                                                  std::size_t cols,
                                                  const fan_allocator *alloc = nullptr) {
    detail::check_size(a, rows * cols, "matrix_singular_values");
    std::vector<double> sv(rows < cols ? rows : cols);
    detail::check(fan_matrix_singular_values(a.data(), rows, cols, sv.data(), sv.size(), alloc),
                  "fan_matrix_singular_values");
    return sv;
}
inline double matrix_effective_rank(const std::vector<float> &a, std::size_t rows, std::size_t cols,
                                    const fan_allocator *alloc = nullptr) {
    detail::check_size(a, rows * cols, "matrix_effective_rank");
    double v = 0.0;
    detail::check(fan_matrix_effective_rank(a.data(), rows, cols, &v, alloc), "fan_matrix_effective_rank");
    return v;
}
inline double matrix_participation_ratio(const std::vector<float> &a, std::size_t rows,
                                         std::size_t cols, const fan_allocator *alloc = nullptr) {
    detail::check_size(a, rows * cols, "matrix_participation_ratio");
    double v = 0.0;
    detail::check(fan_matrix_participation_ratio(a.data(), rows, cols, &v, alloc),
                  "fan_matrix_participation_ratio");
    return v;
}
inline double matrix_stable_rank(const std::vector<float> &a, std::size_t rows, std::size_t cols,
                                 const fan_allocator *alloc = nullptr) {
    detail::check_size(a, rows * cols, "matrix_stable_rank");
    double v = 0.0;
    detail::check(fan_matrix_stable_rank(a.data(), rows, cols, &v, alloc), "fan_matrix_stable_rank");
    return v;
}
inline double matrix_angle(const std::vector<float> &a, const std::vector<float> &b) {
    detail::check_size(b, a.size(), "matrix_angle");
    double deg = 0.0;
    detail::check(fan_matrix_angle(a.data(), b.data(), a.size(), &deg), "fan_matrix_angle");
    return deg;
}
inline Spectrum spectrum_summary(const std::vector<double> &sv) {
    Spectrum s{0.0, 0.0, 0.0};
    detail::check(fan_spectrum_summary(sv.data(), sv.size(), &s.effective_rank,
                                       &s.participation_ratio, &s.stable_rank),
                  "fan_spectrum_summary");
    return s;
}

// ---- datasets -----------------------------------------------------------------------------------

/** A dataset, shared: copies refer to the same C dataset, freed with the last copy. */
class Dataset {
public:
    // Loaders: the exception's message says which file and what is wrong; opts carries the
    // allocator and the load budget.
    static Dataset load_idx(const std::string &images, const std::string &labels,
                            const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_idx_ex(&ds, images.c_str(), labels.c_str(), eo.get()), eo.msg);
        return Dataset(ds);
    }
    static Dataset load_idx_mem(const void *images, std::size_t images_len, const void *labels,
                                std::size_t labels_len, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_idx_mem_ex(&ds, images, images_len, labels, labels_len, eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    static Dataset load_cifar(const std::vector<std::string> &paths, std::size_t label_bytes,
                              const CreateOptions &opts = CreateOptions()) {
        std::vector<const char *> p;
        for (const std::string &s : paths) p.push_back(s.c_str());
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_cifar_ex(&ds, p.data(), p.size(), label_bytes, eo.get()), eo.msg);
        return Dataset(ds);
    }
    static Dataset load_cifar_mem(const void *buf, std::size_t len, std::size_t label_bytes,
                                  const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_cifar_mem_ex(&ds, buf, len, label_bytes, eo.get()), eo.msg);
        return Dataset(ds);
    }
    static Dataset load_csv(const std::string &path, std::size_t label_column = FAN_CSV_LAST_COLUMN,
                            bool skip_header = false, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_csv_ex(&ds, path.c_str(), label_column, skip_header ? 1 : 0,
                                              eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    static Dataset load_csv_mem(const void *buf, std::size_t len,
                                std::size_t label_column = FAN_CSV_LAST_COLUMN,
                                bool skip_header = false, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_csv_mem_ex(&ds, buf, len, label_column, skip_header ? 1 : 0,
                                                  eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    /** n_classes 0: the largest label + 1. The exception's message says what is wrong. */
    static Dataset load_npy(const std::string &images, const std::string &labels,
                            std::size_t n_classes = 0, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_npy_ex(&ds, images.c_str(), labels.c_str(), n_classes, eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    static Dataset load_npy_mem(const void *images, std::size_t images_len, const void *labels,
                                std::size_t labels_len, std::size_t n_classes = 0,
                                const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_dataset *ds = nullptr;
        detail::check(fan_dataset_load_npy_mem_ex(&ds, images, images_len, labels, labels_len,
                                                  n_classes, eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    /** labels.size() rows of dim floats. */
    static Dataset from_arrays(const std::vector<float> &x, const std::vector<int32_t> &labels,
                               std::size_t dim, std::size_t classes,
                               const CreateOptions &opts = CreateOptions()) {
        detail::check_size(x, labels.size() * dim, "Dataset::from_arrays: x");
        fan_dataset *ds = nullptr;
        detail::ex_options eo(opts);
        detail::check(fan_dataset_from_arrays_ex(&ds, x.data(), labels.data(), labels.size(), dim,
                                                 classes, eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    /** labels.size() channel-planar images of width x height x channels bytes. */
    static Dataset from_u8(const std::vector<uint8_t> &pixels, const std::vector<int32_t> &labels,
                           std::size_t width, std::size_t height, std::size_t channels,
                           std::size_t classes, const CreateOptions &opts = CreateOptions()) {
        detail::check_size(pixels, labels.size() * width * height * channels, "Dataset::from_u8: pixels");
        fan_dataset *ds = nullptr;
        detail::ex_options eo(opts);
        detail::check(fan_dataset_from_u8_ex(&ds, pixels.data(), labels.data(), labels.size(), width,
                                             height, channels, classes, eo.get()),
                      eo.msg);
        return Dataset(ds);
    }
    /** Takes ownership of a C dataset. */
    static Dataset adopt(fan_dataset *ds) { return Dataset(ds); }

    std::size_t size() const noexcept { return fan_dataset_size(get()); }
    std::size_t dim() const noexcept { return fan_dataset_dim(get()); }
    std::size_t classes() const noexcept { return fan_dataset_classes(get()); }
    const char *errmsg() const noexcept { return fan_dataset_errmsg(get()); }
    ImageShape shape() const {
        ImageShape s{0, 0, 0};
        check(fan_dataset_shape(get(), &s.width, &s.height, &s.channels));
        return s;
    }
    void set_shape(std::size_t width, std::size_t height, std::size_t channels) {
        check(fan_dataset_set_shape(get(), width, height, channels));
    }
    void set_normalization(fan_norm norm, double mean = 0.0, double std = 1.0) {
        check(fan_dataset_set_normalization(get(), norm, mean, std));
    }
    void standardize(double mean, double std) { set_normalization(FAN_NORM_STANDARDIZE, mean, std); }
    /** Mean and standard deviation after scaling. */
    std::pair<double, double> compute_stats() const {
        std::pair<double, double> r(0.0, 0.0);
        check(fan_dataset_compute_stats(get(), &r.first, &r.second));
        return r;
    }
    Sample get(std::size_t index) const {
        Sample s{std::vector<float>(dim()), 0};
        check(fan_dataset_get(get(), index, s.x.data(), s.x.size(), &s.label));
        return s;
    }
    std::vector<std::size_t> class_counts() const {
        std::vector<std::size_t> c(classes());
        check(fan_dataset_class_counts(get(), c.data(), c.size()));
        return c;
    }
    // Derived datasets: opts.alloc NULL keeps the source's allocator.
    Dataset subset_first(std::size_t n, const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_subset_first_ex(&out, get(), n, eo.get()), eo.msg);
        return Dataset(out);
    }
    Dataset subset_random(std::size_t n, uint64_t seed, const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_subset_random_ex(&out, get(), n, seed, eo.get()), eo.msg);
        return Dataset(out);
    }
    Dataset subset_stratified(std::size_t n_per_class, uint64_t seed,
                              const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_subset_stratified_ex(&out, get(), n_per_class, seed, eo.get()), eo.msg);
        return Dataset(out);
    }
    Dataset subset_indices(const std::vector<std::size_t> &indices,
                           const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_subset_indices_ex(&out, get(), indices.data(), indices.size(), eo.get()),
                      eo.msg);
        return Dataset(out);
    }
    /** (training part, validation part of n_val samples drawn at random). */
    std::pair<Dataset, Dataset> split(std::size_t n_val, uint64_t seed,
                                      const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *train = nullptr, *val = nullptr;
        detail::check(fan_dataset_split_ex(&train, &val, get(), n_val, seed, eo.get()), eo.msg);
        return std::pair<Dataset, Dataset>(Dataset(train), Dataset(val));
    }
    /** (training part, validation part of n_val samples, stratified by class). */
    std::pair<Dataset, Dataset> split_stratified(std::size_t n_val, uint64_t seed,
                                                 const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *train = nullptr, *val = nullptr;
        detail::check(fan_dataset_split_stratified_ex(&train, &val, get(), n_val, seed, eo.get()), eo.msg);
        return std::pair<Dataset, Dataset>(Dataset(train), Dataset(val));
    }
    Dataset translate(double dx, double dy, const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_translate_ex(&out, get(), dx, dy, eo.get()), eo.msg);
        return Dataset(out);
    }
    Dataset rotate(double degrees, const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_rotate_ex(&out, get(), degrees, eo.get()), eo.msg);
        return Dataset(out);
    }
    Dataset scale(double factor, const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_scale_ex(&out, get(), factor, eo.get()), eo.msg);
        return Dataset(out);
    }
    Dataset resize(std::size_t width, std::size_t height, const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_dataset *out = nullptr;
        detail::check(fan_dataset_resize_ex(&out, get(), width, height, eo.get()), eo.msg);
        return Dataset(out);
    }
    fan_dataset *get() const noexcept { return ds_.get(); }
    std::shared_ptr<fan_dataset> shared() const noexcept { return ds_; }

private:
    explicit Dataset(fan_dataset *ds) : ds_(ds, detail::dataset_free()) {}
    void check(fan_status st) const { detail::check(st, fan_dataset_errmsg(get())); }
    std::shared_ptr<fan_dataset> ds_;
};

// ---- iterators ----------------------------------------------------------------------------------

/** A batch borrowed from an iterator: valid until its next call. n is 0 at the end of an epoch. */
struct Batch {
    const float *x;
    const int32_t *labels;  // nullptr with soft labels
    const float *targets;   // soft labels only
    std::size_t n;
};

class Iter {
public:
    static Iter batches(const Dataset &ds, std::size_t batch, uint64_t shuffle_seed,
                        const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_iter *it = nullptr;
        detail::check(fan_iter_create_batches_ex(&it, ds.get(), batch, shuffle_seed, eo.get()), eo.msg);
        return Iter(it, ds.shared());
    }
    static Iter noise(std::size_t dim, std::size_t classes, std::size_t batch, uint64_t seed,
                      const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_iter *it = nullptr;
        detail::check(fan_iter_create_noise_ex(&it, dim, classes, batch, seed, eo.get()), eo.msg);
        return Iter(it, nullptr);
    }
    /** Takes ownership of a C iterator that reads ds (none for a noise iterator). */
    static Iter adopt(fan_iter *it, const Dataset *ds = nullptr) {
        return Iter(it, ds != nullptr ? ds->shared() : nullptr);
    }
    Iter &set(fan_iter_param p, double value) {
        check(fan_iter_set(get(), p, value));
        return *this;
    }
    double get(fan_iter_param p) const {
        double v = 0.0;
        check(fan_iter_get(get(), p, &v));
        return v;
    }
    Batch next() {
        Batch b{nullptr, nullptr, nullptr, 0};
        check(fan_iter_next(get(), &b.x, &b.labels, &b.targets, &b.n));
        return b;
    }
    void reset() { check(fan_iter_reset(get())); }
    /** Where the iterator is (fan_iter_get_state), to continue the same batches later. */
    std::vector<unsigned char> state() const {
        std::size_t need = 0;
        check(fan_iter_get_state(get(), nullptr, 0, &need));
        std::vector<unsigned char> buf(need);
        check(fan_iter_get_state(get(), buf.data(), buf.size(), &need));
        return buf;
    }
    void set_state(const std::vector<unsigned char> &state) {
        check(fan_iter_set_state(get(), state.data(), state.size()));
    }
    /** Epochs finished since creation or reset (batch iterators). */
    uint64_t epoch() const noexcept { return fan_iter_epoch(get()); }
    bool is_noise() const noexcept { return fan_iter_is_noise(get()) != 0; }
    std::size_t dim() const noexcept { return fan_iter_dim(get()); }
    std::size_t classes() const noexcept { return fan_iter_classes(get()); }
    std::size_t batches_per_epoch() const noexcept { return fan_iter_batches_per_epoch(get()); }
    const char *errmsg() const noexcept { return fan_iter_errmsg(get()); }
    fan_iter *get() const noexcept { return it_.get(); }

private:
    Iter(fan_iter *it, std::shared_ptr<fan_dataset> ds) : ds_(std::move(ds)), it_(it) {}
    void check(fan_status st) const { detail::check(st, fan_iter_errmsg(get())); }
    // Destroyed in reverse order: the iterator first, then (perhaps) the dataset it borrowed.
    std::shared_ptr<fan_dataset> ds_;
    std::unique_ptr<fan_iter, detail::iter_free> it_;
};

// ---- networks and optimizers --------------------------------------------------------------------

class Optimizer;

/** Options of Net::train_v2 (fan_train_options). */
struct TrainOptions {
    const Dataset *validation;  // evaluated after every epoch; nullptr: none
    std::size_t patience;       // epochs without improvement before stopping; 0: never
    bool restore_best;          // put back the weights of the best validation epoch
    double min_delta;           // an improvement is a validation loss below best - min_delta
    TrainOptions() : validation(nullptr), patience(0), restore_best(false), min_delta(0.0) {}
    fan_train_options c() const {
        fan_train_options o = fan_train_options();
        o.struct_size = sizeof o;
        o.validation = validation != nullptr ? validation->get() : nullptr;
        o.patience = patience;
        o.restore_best = restore_best ? 1 : 0;
        o.min_delta = min_delta;
        return o;
    }
};

class Net {
public:
    explicit Net(const std::vector<std::size_t> &sizes, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_net *net = nullptr;
        detail::check(fan_net_create_ex(&net, sizes.data(), sizes.size(), eo.get()), eo.msg);
        net_.reset(net);
    }
    /** Loads a model file; the exception's message says what is wrong (fan_net_load_v2). */
    static Net load(const std::string &path) {
        fan_net *net = nullptr;
        char msg[256] = "";
        detail::check(fan_net_load_v2(&net, path.c_str(), nullptr, 0, nullptr, msg, sizeof msg),
                      path + ": " + msg);
        return Net(net);
    }
    /** As load with options: the allocator and the load budget (fan_net_load_ex). */
    static Net load(const std::string &path, const CreateOptions &opts) {
        detail::ex_options eo(opts);
        fan_net *net = nullptr;
        detail::check(fan_net_load_ex(&net, path.c_str(), eo.get()), eo.msg);
        return Net(net);
    }
    static Net load_mem(const void *buf, std::size_t len) {
        fan_net *net = nullptr;
        char msg[256] = "";
        detail::check(fan_net_load_v2(&net, nullptr, buf, len, nullptr, msg, sizeof msg), msg);
        return Net(net);
    }
    static Net load_mem(const void *buf, std::size_t len, const CreateOptions &opts) {
        detail::ex_options eo(opts);
        fan_net *net = nullptr;
        detail::check(fan_net_load_mem_ex(&net, buf, len, eo.get()), eo.msg);
        return Net(net);
    }
    /** As load, through fan_net_load (no detail message). */
    static Net load_quiet(const std::string &path, const fan_allocator *alloc = nullptr) {
        fan_net *net = nullptr;
        detail::check(fan_net_load(&net, path.c_str(), alloc), "fan_net_load(" + path + ")");
        return Net(net);
    }
    /** As load_mem, through fan_net_load_mem (no detail message). */
    static Net load_mem_quiet(const void *buf, std::size_t len, const fan_allocator *alloc = nullptr) {
        fan_net *net = nullptr;
        detail::check(fan_net_load_mem(&net, buf, len, alloc), "fan_net_load_mem");
        return Net(net);
    }
    /** Takes ownership of a C net. */
    static Net adopt(fan_net *net) { return Net(net); }
    /** A deep copy; opts.alloc NULL keeps this net's allocator. */
    Net clone(const CreateOptions &opts = CreateOptions()) const {
        detail::ex_options eo(opts);
        fan_net *net = nullptr;
        detail::check(fan_net_clone_ex(&net, get(), eo.get()), eo.msg);
        return Net(net);
    }
    void save(const std::string &path) const { check(fan_net_save(get(), path.c_str())); }
    std::vector<unsigned char> save_mem() const {
        std::size_t need = 0;
        check(fan_net_save_mem(get(), nullptr, 0, &need));
        std::vector<unsigned char> buf(need);
        check(fan_net_save_mem(get(), buf.data(), buf.size(), &need));
        return buf;
    }
    void export_npy(const std::string &dir) const { check(fan_net_export_npy(get(), dir.c_str())); }
    void import_npy(const std::string &dir) { check(fan_net_import_npy(get(), dir.c_str())); }

    // Settings
    Net &set_rule(fan_rule r) { check(fan_net_set_rule(get(), r)); return *this; }
    fan_rule rule() const noexcept { return fan_net_rule(get()); }
    Net &set_activation(std::size_t layer, fan_activation a) {
        check(fan_net_set_activation(get(), layer, a));
        return *this;
    }
    fan_activation activation(std::size_t layer) const noexcept { return fan_net_activation(get(), layer); }
    Net &set_loss(fan_loss l) { check(fan_net_set_loss(get(), l)); return *this; }
    fan_loss loss() const noexcept { return fan_net_loss(get()); }
    Net &set(fan_net_param p, double value) { check(fan_net_set(get(), p, value)); return *this; }
    double get(fan_net_param p) const {
        double v = 0.0;
        check(fan_net_get(get(), p, &v));
        return v;
    }
    Net &set_initializer(fan_matrix which, fan_init init) {
        check(fan_net_set_initializer(get(), which, init));
        return *this;
    }
    Net &init(uint64_t weight_seed, uint64_t feedback_seed) {
        check(fan_net_init(get(), weight_seed, feedback_seed));
        return *this;
    }
    /** (weight seed, feedback seed) of the last init. */
    std::pair<uint64_t, uint64_t> seeds() const {
        std::pair<uint64_t, uint64_t> s(0, 0);
        check(fan_net_seeds(get(), &s.first, &s.second));
        return s;
    }

    // Shapes
    std::size_t num_layers() const noexcept { return fan_net_num_layers(get()); }
    std::size_t layer_inputs(std::size_t l) const noexcept { return fan_net_layer_inputs(get(), l); }
    std::size_t layer_outputs(std::size_t l) const noexcept { return fan_net_layer_outputs(get(), l); }
    std::size_t input_size() const noexcept { return fan_net_input_size(get()); }
    std::size_t output_size() const noexcept { return fan_net_output_size(get()); }
    std::size_t num_params() const noexcept { return fan_net_num_params(get()); }
    Shape feedback_shape(std::size_t l) const {
        Shape s{0, 0};
        check(fan_net_feedback_shape(get(), l, &s.rows, &s.cols));
        return s;
    }

    // Matrices
    Layer weights(std::size_t l) const {
        Layer m{std::vector<float>(layer_outputs(l) * layer_inputs(l)), std::vector<float>(layer_outputs(l))};
        check(fan_net_get_weights(get(), l, m.w.data(), m.w.size(), m.b.data(), m.b.size()));
        return m;
    }
    /** An empty vector leaves that part as it is. */
    void set_weights(std::size_t l, const std::vector<float> &w, const std::vector<float> &b) {
        check(fan_net_set_weights(get(), l, w.empty() ? nullptr : w.data(), w.size(),
                                  b.empty() ? nullptr : b.data(), b.size()));
    }
    std::vector<float> feedback(std::size_t l) const {
        const Shape s = feedback_shape(l);
        std::vector<float> v(s.rows * s.cols);
        check(fan_net_get_feedback(get(), l, v.data(), v.size()));
        return v;
    }
    void set_feedback(std::size_t l, const std::vector<float> &b) {
        check(fan_net_set_feedback(get(), l, b.data(), b.size()));
    }
    /** All W and b as one borrowed block (fan_net_parameters), for scale-out code. */
    FloatView parameters() {
        FloatView v{nullptr, 0};
        check(fan_net_parameters(get(), &v.data, &v.size));
        return v;
    }
    /** The last gradients in the layout of parameters() (fan_net_gradients), changeable in place. */
    FloatView gradients() {
        FloatView v{nullptr, 0};
        check(fan_net_gradients(get(), &v.data, &v.size));
        return v;
    }
    /** Installs a C function run by every training step between gradients and update (NULL
        removes it); user is passed to it unchanged and must outlive its use. */
    Net &set_gradient_hook(fan_gradient_hook fn, void *user) {
        check(fan_net_set_gradient_hook(get(), fn, user));
        return *this;
    }
    /** Weight mirroring: trains the stored B toward W (fan_net_mirror). */
    Net &mirror(std::size_t steps, std::size_t batch, double lr, double weight_decay, uint64_t seed) {
        check(fan_net_mirror(get(), steps, batch, lr, weight_decay, seed));
        return *this;
    }
    Layer gradients(std::size_t l) const {
        Layer g{std::vector<float>(layer_outputs(l) * layer_inputs(l)), std::vector<float>(layer_outputs(l))};
        check(fan_net_get_gradients(get(), l, g.w.data(), g.w.size(), g.b.data(), g.b.size()));
        return g;
    }
    void set_gradients(std::size_t l, const std::vector<float> &dw, const std::vector<float> &db) {
        check(fan_net_set_gradients(get(), l, dw.empty() ? nullptr : dw.data(), dw.size(),
                                    db.empty() ? nullptr : db.data(), db.size()));
    }

    // Computing: x holds rows of input_size() floats
    std::vector<float> forward(const std::vector<float> &x) {
        const std::size_t n = rows(x);
        std::vector<float> probs(n * output_size());
        check(fan_net_forward(get(), x.data(), n, probs.data(), probs.size()));
        return probs;
    }
    float compute_gradients(const std::vector<float> &x, const std::vector<int32_t> &labels) {
        float loss = 0.0f;
        check(fan_net_compute_gradients(get(), x.data(), labels.data(), rows(x, labels.size()), &loss));
        return loss;
    }
    float compute_gradients_targets(const std::vector<float> &x, const std::vector<float> &targets) {
        const std::size_t n = rows(x);
        detail::check_size(targets, n * output_size(), "compute_gradients_targets: targets");
        float loss = 0.0f;
        check(fan_net_compute_gradients_targets(get(), x.data(), targets.data(), n, &loss));
        return loss;
    }
    double loss_value(const std::vector<float> &x, const std::vector<int32_t> &labels) {
        double loss = 0.0;
        check(fan_net_loss_value(get(), x.data(), labels.data(), rows(x, labels.size()), &loss));
        return loss;
    }
    float train_batch(Optimizer &opt, const std::vector<float> &x, const std::vector<int32_t> &labels);
    float train_batch_targets(Optimizer &opt, const std::vector<float> &x,
                              const std::vector<float> &targets);
    /** The hot path on borrowed arrays (a Batch from an Iter, say). */
    float train_batch(Optimizer &opt, const float *x, const int32_t *labels, std::size_t n);
    Evaluation evaluate(const Dataset &ds) {
        Evaluation e{0.0, 0.0};
        check(fan_net_evaluate(get(), ds.get(), &e.loss, &e.accuracy));
        return e;
    }

    // Training loops: return FAN_OK, or FAN_STOPPED when the callback asked to stop
    fan_status train(Optimizer &opt, Iter &batches, std::size_t epochs);
    fan_status train_steps(Optimizer &opt, Iter &it, std::size_t steps);
    fan_status pretrain_noise(Optimizer &opt, Iter &noise, std::size_t steps);
    template <class F>
    fan_status train(Optimizer &opt, Iter &batches, std::size_t epochs, F &&on_step);
    template <class F>
    fan_status train_steps(Optimizer &opt, Iter &it, std::size_t steps, F &&on_step);
    template <class F>
    fan_status pretrain_noise(Optimizer &opt, Iter &noise, std::size_t steps, F &&on_step);
    /** fan_train_v2: validation every epoch, early stopping, best weights restored; returns
        FAN_OK, FAN_EARLY_STOPPED or FAN_STOPPED. */
    fan_status train_v2(Optimizer &opt, Iter &batches, std::size_t epochs, const TrainOptions &options);
    template <class F>
    fan_status train_v2(Optimizer &opt, Iter &batches, std::size_t epochs, const TrainOptions &options,
                        F &&on_step);

    // Diagnostics
    Alignment alignment(std::size_t layer) const {
        Alignment a{std::vector<double>(layer_inputs(layer)), 0.0, 0.0};
        check(fan_diag_alignment(get(), layer, a.per_unit.data(), a.per_unit.size(), &a.mean, &a.matrix));
        return a;
    }
    std::vector<double> delta_alignment(const std::vector<float> &x, const std::vector<int32_t> &labels) const {
        std::vector<double> deg(num_layers());
        check(fan_diag_delta_alignment(get(), x.data(), labels.data(), rows(x, labels.size()),
                                       deg.data(), deg.size()));
        return deg;
    }
    std::vector<double> singular_values(std::size_t layer, fan_matrix which = FAN_MATRIX_WEIGHTS) const {
        Shape s{layer_outputs(layer), layer_inputs(layer)};
        if (which == FAN_MATRIX_FEEDBACK) s = feedback_shape(layer);
        std::vector<double> sv(s.rows < s.cols ? s.rows : s.cols);
        check(fan_diag_singular_values(get(), layer, which, sv.data(), sv.size()));
        return sv;
    }
    /** The singular values of W_l, B_l or dW_l and their three summaries, from one SVD. */
    std::pair<std::vector<double>, Spectrum> spectrum(std::size_t layer,
                                                     fan_matrix which = FAN_MATRIX_WEIGHTS) const {
        Shape s{layer_outputs(layer), layer_inputs(layer)};
        if (which == FAN_MATRIX_FEEDBACK) s = feedback_shape(layer);
        std::pair<std::vector<double>, Spectrum> r;
        r.first.resize(s.rows < s.cols ? s.rows : s.cols);
        check(fan_diag_spectrum(get(), layer, which, r.first.data(), r.first.size(),
                                &r.second.effective_rank, &r.second.participation_ratio,
                                &r.second.stable_rank));
        return r;
    }
    double effective_rank(std::size_t layer, fan_matrix which = FAN_MATRIX_WEIGHTS) const {
        double v = 0.0;
        check(fan_diag_effective_rank(get(), layer, which, &v));
        return v;
    }
    double participation_ratio(std::size_t layer, fan_matrix which = FAN_MATRIX_WEIGHTS) const {
        double v = 0.0;
        check(fan_diag_participation_ratio(get(), layer, which, &v));
        return v;
    }
    double stable_rank(std::size_t layer, fan_matrix which = FAN_MATRIX_WEIGHTS) const {
        double v = 0.0;
        check(fan_diag_stable_rank(get(), layer, which, &v));
        return v;
    }
    std::vector<double> principal_angles(std::size_t layer, std::size_t k) const {
        std::vector<double> deg(k);
        check(fan_diag_principal_angles(get(), layer, k, deg.data(), deg.size()));
        return deg;
    }
    double gram_dimensionality(std::size_t hidden, const Dataset &ds, std::size_t max_samples = 0) const {
        double v = 0.0;
        check(fan_diag_gram_dimensionality(get(), hidden, ds.get(), max_samples, &v));
        return v;
    }
    Readout readout(const std::vector<float> &x, std::size_t n_bins = 10) const {
        Readout r{0.0, 0.0, std::vector<double>(n_bins)};
        check(fan_diag_readout(get(), x.data(), rows(x), &r.mean_max_prob, &r.mean_entropy,
                               r.hist.empty() ? nullptr : r.hist.data(), r.hist.size()));
        return r;
    }
    /** Readout on a borrowed batch (a Batch from a noise Iter, say). */
    Readout readout(const float *x, std::size_t n, std::size_t n_bins = 10) const {
        Readout r{0.0, 0.0, std::vector<double>(n_bins)};
        check(fan_diag_readout(get(), x, n, &r.mean_max_prob, &r.mean_entropy,
                               r.hist.empty() ? nullptr : r.hist.data(), r.hist.size()));
        return r;
    }
    double calibration_error(const Dataset &ds, std::size_t n_bins = 15) const {
        double v = 0.0;
        check(fan_diag_calibration_error(get(), ds.get(), n_bins, &v));
        return v;
    }

    const char *errmsg() const noexcept { return fan_net_errmsg(get()); }
    fan_net *get() const noexcept { return net_.get(); }
    fan_net *release() noexcept { return net_.release(); }

private:
    explicit Net(fan_net *net) : net_(net) {}
    fan_status check(fan_status st) const { return detail::check(st, fan_net_errmsg(get())); }
    // Rows of x (a whole number of input_size() rows), and equal to n_labels when given.
    std::size_t rows(const std::vector<float> &x, std::size_t n_labels = static_cast<std::size_t>(-1)) const {
        const std::size_t in = input_size();
        if (in == 0 || x.size() % in != 0)
            throw Error(FAN_E_SHAPE, "x has " + std::to_string(x.size()) + " values, not rows of " +
                                         std::to_string(in));
        const std::size_t n = x.size() / in;
        if (n_labels != static_cast<std::size_t>(-1) && n_labels != n)
            throw Error(FAN_E_SHAPE, std::to_string(n_labels) + " labels for " + std::to_string(n) + " rows");
        return n;
    }
    template <class Loop, class F>
    fan_status run(Loop loop, Optimizer &opt, Iter &it, std::size_t count, F &on_step);
    std::unique_ptr<fan_net, detail::net_free> net_;
};

class Optimizer {
public:
    Optimizer(const Net &net, fan_optimizer_kind kind, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_optimizer *opt = nullptr;
        detail::check(fan_optimizer_create_ex(&opt, kind, net.get(), eo.get()), eo.msg);
        opt_.reset(opt);
    }
    /** An optimizer from bytes of save_mem() (fan_optimizer_load_mem_ex). */
    static Optimizer load_mem(const void *buf, std::size_t len, const CreateOptions &opts = CreateOptions()) {
        detail::ex_options eo(opts);
        fan_optimizer *opt = nullptr;
        detail::check(fan_optimizer_load_mem_ex(&opt, buf, len, eo.get()), eo.msg);
        return Optimizer(opt);
    }
    /** Takes ownership of a C optimizer. */
    static Optimizer adopt(fan_optimizer *opt) { return Optimizer(opt); }
    /** The whole state (fan_optimizer_save_mem): load_mem continues bit for bit. */
    std::vector<unsigned char> save_mem() const {
        std::size_t need = 0;
        check(fan_optimizer_save_mem(get(), nullptr, 0, &need));
        std::vector<unsigned char> buf(need);
        check(fan_optimizer_save_mem(get(), buf.data(), buf.size(), &need));
        return buf;
    }
    /** The learning rate the schedule gives step `step` (0-based). */
    double scheduled_lr(uint64_t step) const {
        double lr = 0.0;
        check(fan_optimizer_scheduled_lr(get(), step, &lr));
        return lr;
    }
    Optimizer &set(fan_optimizer_param p, double value) {
        check(fan_optimizer_set(get(), p, value));
        return *this;
    }
    double get(fan_optimizer_param p) const {
        double v = 0.0;
        check(fan_optimizer_get(get(), p, &v));
        return v;
    }
    static Bounds param_bounds(fan_optimizer_param p) {
        Bounds b{0.0, 0.0, 0.0};
        detail::check(fan_optimizer_param_bounds(p, &b.lo, &b.hi, &b.def), "fan_optimizer_param_bounds");
        return b;
    }
    fan_optimizer_kind kind() const noexcept { return fan_optimizer_get_kind(get()); }
    uint64_t steps() const noexcept { return fan_optimizer_steps(get()); }
    void reset() { check(fan_optimizer_reset(get())); }
    void step(Net &net) { check(fan_optimizer_step(get(), net.get())); }
    const char *errmsg() const noexcept { return fan_optimizer_errmsg(get()); }
    fan_optimizer *get() const noexcept { return opt_.get(); }

private:
    explicit Optimizer(fan_optimizer *opt) : opt_(opt) {}
    void check(fan_status st) const { detail::check(st, fan_optimizer_errmsg(get())); }
    std::unique_ptr<fan_optimizer, detail::optimizer_free> opt_;
};

inline float Net::train_batch(Optimizer &opt, const std::vector<float> &x,
                              const std::vector<int32_t> &labels) {
    float loss = 0.0f;
    check(fan_net_train_batch(get(), opt.get(), x.data(), labels.data(), rows(x, labels.size()), &loss));
    return loss;
}
inline float Net::train_batch(Optimizer &opt, const float *x, const int32_t *labels, std::size_t n) {
    float loss = 0.0f;
    check(fan_net_train_batch(get(), opt.get(), x, labels, n, &loss));
    return loss;
}
inline float Net::train_batch_targets(Optimizer &opt, const std::vector<float> &x,
                                      const std::vector<float> &targets) {
    const std::size_t n = rows(x);
    detail::check_size(targets, n * output_size(), "train_batch_targets: targets");
    float loss = 0.0f;
    check(fan_net_train_batch_targets(get(), opt.get(), x.data(), targets.data(), n, &loss));
    return loss;
}
inline fan_status Net::train(Optimizer &opt, Iter &batches, std::size_t epochs) {
    return check(fan_train(get(), opt.get(), batches.get(), epochs, nullptr, nullptr));
}
inline fan_status Net::train_steps(Optimizer &opt, Iter &it, std::size_t steps) {
    return check(fan_train_steps(get(), opt.get(), it.get(), steps, nullptr, nullptr));
}
inline fan_status Net::pretrain_noise(Optimizer &opt, Iter &noise, std::size_t steps) {
    return check(fan_pretrain_noise(get(), opt.get(), noise.get(), steps, nullptr, nullptr));
}
template <class Loop, class F>
fan_status Net::run(Loop loop, Optimizer &opt, Iter &it, std::size_t count, F &on_step) {
    detail::trampoline<F> t{&on_step, nullptr};
    const fan_status st = loop(get(), opt.get(), it.get(), count, &detail::trampoline<F>::call, &t);
    if (t.error) std::rethrow_exception(t.error);
    return check(st);
}
template <class F>
fan_status Net::train(Optimizer &opt, Iter &batches, std::size_t epochs, F &&on_step) {
    return run(fan_train, opt, batches, epochs, on_step);
}
template <class F>
fan_status Net::train_steps(Optimizer &opt, Iter &it, std::size_t steps, F &&on_step) {
    return run(fan_train_steps, opt, it, steps, on_step);
}
template <class F>
fan_status Net::pretrain_noise(Optimizer &opt, Iter &noise, std::size_t steps, F &&on_step) {
    return run(fan_pretrain_noise, opt, noise, steps, on_step);
}
inline fan_status Net::train_v2(Optimizer &opt, Iter &batches, std::size_t epochs,
                                const TrainOptions &options) {
    const fan_train_options o = options.c();
    return check(fan_train_v2(get(), opt.get(), batches.get(), epochs, &o, nullptr, nullptr));
}
template <class F>
fan_status Net::train_v2(Optimizer &opt, Iter &batches, std::size_t epochs,
                         const TrainOptions &options, F &&on_step) {
    typedef typename std::remove_reference<F>::type Fn;
    const fan_train_options o = options.c();
    detail::trampoline<Fn> t{&on_step, nullptr};
    const fan_status st = fan_train_v2(get(), opt.get(), batches.get(), epochs, &o,
                                       &detail::trampoline<Fn>::call, &t);
    if (t.error) std::rethrow_exception(t.error);
    return check(st);
}

// ---- checkpoints ----------------------------------------------------------------------------

/** What a checkpoint gives back: the net, and the optimizer and iterator when saved and asked for
    (empty otherwise). A loaded batch iterator keeps the dataset it reads alive. */
struct Checkpoint {
    Net net;
    std::unique_ptr<Optimizer> optimizer;
    std::unique_ptr<Iter> iter;
};

/** fan_checkpoint_save: the net, and opt and it unless nullptr; atomic. */
inline void checkpoint_save(const std::string &path, const Net &net, const Optimizer *opt = nullptr,
                            const Iter *it = nullptr) {
    detail::check(fan_checkpoint_save(path.c_str(), net.get(), opt ? opt->get() : nullptr,
                                      it ? it->get() : nullptr),
                  net.errmsg());
}
inline std::vector<unsigned char> checkpoint_save_mem(const Net &net, const Optimizer *opt = nullptr,
                                                      const Iter *it = nullptr) {
    std::size_t need = 0;
    fan_optimizer *o = opt ? opt->get() : nullptr;
    fan_iter *i = it ? it->get() : nullptr;
    detail::check(fan_checkpoint_save_mem(nullptr, 0, &need, net.get(), o, i), net.errmsg());
    std::vector<unsigned char> buf(need);
    detail::check(fan_checkpoint_save_mem(buf.data(), buf.size(), &need, net.get(), o, i), net.errmsg());
    buf.resize(need);
    return buf;
}

namespace detail {
inline Checkpoint adopt_checkpoint(fan_net *net, fan_optimizer *opt, fan_iter *it, const Dataset *data) {
    Checkpoint c{Net::adopt(net), nullptr, nullptr};
    if (opt != nullptr) c.optimizer.reset(new Optimizer(Optimizer::adopt(opt)));
    if (it != nullptr) c.iter.reset(new Iter(Iter::adopt(it, data)));
    return c;
}
}  // namespace detail

/**
 * fan_checkpoint_load_ex: data is the dataset a saved batch iterator runs over (nullptr for a
 * noise iterator or none); want_optimizer / want_iter false skip those parts.
 */
inline Checkpoint checkpoint_load(const std::string &path, const Dataset *data = nullptr,
                                  bool want_optimizer = true, bool want_iter = true,
                                  const CreateOptions &opts = CreateOptions()) {
    detail::ex_options eo(opts);
    fan_net *net = nullptr;
    fan_optimizer *opt = nullptr;
    fan_iter *it = nullptr;
    detail::check(fan_checkpoint_load_ex(path.c_str(), &net, want_optimizer ? &opt : nullptr,
                                         want_iter ? &it : nullptr, data ? data->get() : nullptr,
                                         eo.get()),
                  eo.msg);
    return detail::adopt_checkpoint(net, opt, it, data);
}
/** As checkpoint_load from len bytes at buf (fan_checkpoint_load_mem_ex). */
inline Checkpoint checkpoint_load_mem(const void *buf, std::size_t len, const Dataset *data = nullptr,
                                      bool want_optimizer = true, bool want_iter = true,
                                      const CreateOptions &opts = CreateOptions()) {
    detail::ex_options eo(opts);
    fan_net *net = nullptr;
    fan_optimizer *opt = nullptr;
    fan_iter *it = nullptr;
    detail::check(fan_checkpoint_load_mem_ex(buf, len, &net, want_optimizer ? &opt : nullptr,
                                             want_iter ? &it : nullptr, data ? data->get() : nullptr,
                                             eo.get()),
                  eo.msg);
    return detail::adopt_checkpoint(net, opt, it, data);
}

}  // namespace fanoise

#endif  // FANOISE_HPP
