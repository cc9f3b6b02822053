// soma::dist over MPI (SOMA_WITH_MPI), or as a one-process job without it.
#include "soma/dist/dist.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "kernels/kernels.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/clock.h"
#include "soma/core/error.h"
#include "soma/core/threading.h"

#ifdef SOMA_WITH_MPI
#include <mpi.h>
#endif

namespace soma::dist {

namespace {

CommStats g_stats;

using soma::detail::now_seconds;

// The size of the job the launcher started, or 0 when no launcher's variable is set.
int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(var)) {
      const long n = std::strtol(v, nullptr, 10);
      if (n > 0) return static_cast<int>(n);
    }
  }
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

// The first element of a contiguous float32 or float64 tensor.
[[maybe_unused]] void* raw_data(Tensor& t) {
  if (t.dtype() == kFloat64) return t.data<double>();
  return t.data<float>();
}

// A run of consecutive tensors of one dtype that travel in one message.
struct Bucket {
  size_t begin = 0, end = 0;  // tensor indices [begin, end)
  DType dtype = kFloat32;
  int64_t numel = 0;
};

// Splits `tensors` into buckets (into `buckets`, whose capacity is reused: no allocation per
// training step once warm).
void make_buckets(const std::vector<Tensor>& tensors, int64_t bucket_bytes, const char* op,
                  std::vector<Bucket>& buckets) {
  SOMA_CHECK(bucket_bytes > 0, op, ": bucket_bytes must be positive, got ", bucket_bytes);
  buckets.clear();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    SOMA_CHECK(t.defined(), op, ": tensor ", i, " is undefined");
    SOMA_CHECK(t.dtype() == kFloat32 || t.dtype() == kFloat64, op, ": tensor ", i,
               " must be float32 or float64, got ", t.dtype());
    const int64_t bytes = t.numel() * static_cast<int64_t>(element_size(t.dtype()));
    if (buckets.empty() || buckets.back().dtype != t.dtype() ||
        (buckets.back().numel * static_cast<int64_t>(element_size(t.dtype())) + bytes >
             bucket_bytes &&
         buckets.back().numel > 0)) {
      buckets.push_back({i, i, t.dtype(), 0});
    }
    buckets.back().end = i + 1;
    buckets.back().numel += t.numel();
  }
}

// This process's place in the job, valid while MPI is active (see active()).
int g_rank = 0, g_world = 1, g_local_rank = 0, g_local_size = 1;

#ifdef SOMA_WITH_MPI

bool g_initialized_here = false;  // init() started MPI (so finalize() ends it)

bool mpi_active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

// Throws soma::Error naming the MPI call when it did not succeed.
void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  detail::fail("dist: ", call, " failed on rank ", g_rank, " of ", g_world, ": ",
               std::string(text, static_cast<size_t>(len)));
}

MPI_Datatype mpi_type(DType d) {
  return d == kFloat64 ? MPI_DOUBLE : MPI_FLOAT;
}

// MPI counts are int: a message over 2^30 elements goes in pieces.
constexpr int64_t kMaxCount = int64_t{1} << 30;

// Sums `count` elements over ranks in place; returns the number of MPI_Allreduce calls.
int64_t allreduce_in_place(void* data, int64_t count, DType dtype, const char* call) {
  char* p = static_cast<char*>(data);
  const size_t elem = element_size(dtype);
  int64_t messages = 0;
  for (int64_t done = 0; done < count; ++messages) {
    const int n = static_cast<int>(std::min(kMaxCount, count - done));
    check(MPI_Allreduce(MPI_IN_PLACE, p + done * elem, n, mpi_type(dtype), MPI_SUM, MPI_COMM_WORLD),
          call);
    done += n;
  }
  return messages;
}

// dst[i] = scale * src[i] for i < n: packing a gradient into its bucket in one pass.
template <typename T>
void scaled_copy(T* dst, const T* src, int64_t n, T scale) {
  kernels::call<kernels::ScaledCopy<T>>(dst, src, n, scale);
}

// dst[i] += src[i] for i < n.
template <typename T>
void add_into(T* dst, const T* src, int64_t n) {
  kernels::call<kernels::AddInto<T>>(dst, src, n);
}

// Ring allreduce (sum) of `count` elements in place: a reduce-scatter of N chunks in N - 1
// steps (rank r sends chunk (r - s) mod N to rank r + 1 and adds chunk (r - s - 1) mod N from
// rank r - 1), then an allgather of the reduced chunks in N - 1 more. Each rank sends
// 2 (N - 1) / N of the data: the bandwidth-optimal cost docs/DISTRIBUTED.md models. Every
// element is summed in one fixed order and the result is copied, not recomputed, so all ranks
// end with the same bits (MPI_Allreduce does not promise that).
template <typename T>
void ring_allreduce(T* data, int64_t count, MPI_Datatype type, const char* call) {
  const int n = g_world, r = g_rank;
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  auto lo = [&](int c) { return count * c / n; };
  auto len = [&](int c) { return lo(c + 1) - lo(c); };
  thread_local std::vector<T> incoming;
  incoming.resize(static_cast<size_t>((count + n - 1) / n));  // the longest chunk
  auto exchange = [&](int send_chunk, int recv_chunk, T* recv_into) {
    for (int64_t done = 0; done < std::max(len(send_chunk), len(recv_chunk));) {
      const int64_t s = std::clamp<int64_t>(len(send_chunk) - done, 0, kMaxCount);
      const int64_t q = std::clamp<int64_t>(len(recv_chunk) - done, 0, kMaxCount);
      check(MPI_Sendrecv(data + lo(send_chunk) + done, static_cast<int>(s), type, next, 0,
                         recv_into + done, static_cast<int>(q), type, prev, 0, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE),
            call);
      ++g_stats.messages;
      done += std::max(s, q);
    }
  };
  for (int step = 0; step < n - 1; ++step) {
    const int send_chunk = ((r - step) % n + n) % n, recv_chunk = ((r - step - 1) % n + n) % n;
    exchange(send_chunk, recv_chunk, incoming.data());
    add_into(data + lo(recv_chunk), incoming.data(), len(recv_chunk));
  }
  // Rank r now holds the full sum of chunk (r + 1) mod N; pass the sums around the ring.
  for (int step = 0; step < n - 1; ++step) {
    const int send_chunk = ((r + 1 - step) % n + n) % n, recv_chunk = ((r - step) % n + n) % n;
    exchange(send_chunk, recv_chunk, data + lo(recv_chunk));
  }
}

void broadcast(void* data, int64_t count, MPI_Datatype type, size_t elem, int root,
               const char* call) {
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < count;) {
    const int n = static_cast<int>(std::min(kMaxCount, count - done));
    check(MPI_Bcast(p + done * elem, n, type, root, MPI_COMM_WORLD), call);
    done += n;
  }
}

void terminate_handler() {
  std::string what = "unknown exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
  } else {
    what = "std::terminate called";
  }
  std::fprintf(stderr, "soma::dist: rank %d of %d: uncaught exception: %s\n", g_rank, g_world,
               what.c_str());
  std::fflush(stderr);
  if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

#endif  // SOMA_WITH_MPI

// Whether this process is part of an MPI job (MPI initialised and not yet finalised).
bool active() {
#ifdef SOMA_WITH_MPI
  return mpi_active();
#else
  return false;
#endif
}

void check_root(int root, const char* op) {
  SOMA_CHECK(root >= 0 && root < world_size(), op, ": root ", root, " is not a rank of this ",
             world_size(), "-rank job");
}

}  // namespace

bool available() {
#ifdef SOMA_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpirun() {
  return launcher_world_size() > 0;
}

void init(int* argc, char*** argv) {
#ifdef SOMA_WITH_MPI
  if (mpi_active()) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_initialized_here = true;
  // Errors come back as return codes (turned into soma::Error) instead of killing the job
  // from inside MPI with a bare message.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &g_world), "MPI_Comm_size");
  MPI_Comm node = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
  MPI_Comm_rank(node, &g_local_rank);
  MPI_Comm_size(node, &g_local_size);
  MPI_Comm_free(&node);
  if (g_world > 1) std::set_terminate(terminate_handler);
#else
  (void)argc, (void)argv;
  const int n = launcher_world_size();
  SOMA_CHECK(n <= 1, "dist::init: this process was started by mpirun as one of ", n,
             " ranks, but soma was built without MPI (SOMA_WITH_MPI=OFF; install "
             "libopenmpi-dev and rebuild), so every rank would train alone");
#endif
  if (!std::getenv("SOMA_NUM_THREADS") && !std::getenv("OMP_NUM_THREADS")) {
    const int share = static_cast<int>(std::thread::hardware_concurrency()) / local_size();
    set_num_threads(std::max(1, std::min(available_cpus(), share)));
  }
}

void finalize() {
#ifdef SOMA_WITH_MPI
  if (!mpi_active() || !g_initialized_here) return;
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  g_rank = 0, g_world = 1, g_local_rank = 0, g_local_size = 1;
#endif
}

bool is_initialized() {
  return active();
}

Environment::Environment(int& argc, char**& argv) : uncaught_(std::uncaught_exceptions()) {
  init(&argc, &argv);
}

Environment::Environment() : uncaught_(std::uncaught_exceptions()) {
  init();
}

Environment::~Environment() {
  if (std::uncaught_exceptions() > uncaught_ && world_size() > 1) {
    std::fprintf(stderr, "soma::dist: rank %d of %d is leaving with an exception; ending the job\n",
                 rank(), world_size());
    abort(1);
  }
  finalize();
}

int rank() {
  return active() ? g_rank : 0;
}

int world_size() {
  return active() ? g_world : 1;
}

int local_rank() {
  return active() ? g_local_rank : 0;
}

int local_size() {
  return active() ? g_local_size : 1;
}

void barrier() {
#ifdef SOMA_WITH_MPI
  if (active()) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void broadcast_parameters(const std::vector<Tensor>& tensors, int root, int64_t bucket_bytes) {
  check_root(root, "broadcast_parameters");
  std::vector<Bucket> buckets;
  make_buckets(tensors, bucket_bytes, "broadcast_parameters", buckets);
  if (world_size() == 1) return;
#ifdef SOMA_WITH_MPI
  NoGradGuard no_grad;
  for (const Bucket& b : buckets) {
    Tensor flat = empty({b.numel}, b.dtype);
    int64_t off = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      const int64_t n = tensors[i].numel();
      flat.narrow(0, off, n).copy_(tensors[i].reshape({n}));
      off += n;
    }
    broadcast(raw_data(flat), b.numel, mpi_type(b.dtype), element_size(b.dtype), root,
              "broadcast_parameters: MPI_Bcast");
    off = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      Tensor t = tensors[i];
      const int64_t n = t.numel();
      t.copy_(flat.narrow(0, off, n).reshape(t.shape()));
      off += n;
    }
  }
#endif
}

void broadcast_buffers(const std::vector<Tensor>& buffers, int root) {
  check_root(root, "broadcast_buffers");
  if (world_size() == 1) return;
  NoGradGuard no_grad;
  std::vector<Tensor> floating, others;
  for (const Tensor& t : buffers) {
    if (!t.defined() || t.numel() == 0) continue;
    (t.dtype() == kFloat32 || t.dtype() == kFloat64 ? floating : others).push_back(t);
  }
  // Integer buffers travel as float64 (exact below 2^53) and are copied back.
  std::vector<Tensor> as_double;
  for (const Tensor& t : others) as_double.push_back(t.to(kFloat64).contiguous());
  for (const Tensor& t : as_double) floating.push_back(t);
  if (!floating.empty()) broadcast_parameters(floating, root);
  for (size_t i = 0; i < others.size(); ++i) Tensor(others[i]).copy_(as_double[i]);
}

void broadcast_bytes([[maybe_unused]] std::string& bytes, int root) {
  check_root(root, "broadcast_bytes");
  if (world_size() == 1) return;
#ifdef SOMA_WITH_MPI
  int64_t size = static_cast<int64_t>(bytes.size());
  check(MPI_Bcast(&size, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "broadcast_bytes: MPI_Bcast");
  bytes.resize(static_cast<size_t>(size));
  broadcast(bytes.data(), size, MPI_CHAR, 1, root, "broadcast_bytes: MPI_Bcast");
#endif
}

double allreduce_gradients(const std::vector<Tensor>& params, double weight, int64_t bucket_bytes) {
  SOMA_CHECK(std::isnan(weight) || (weight >= 0 && std::isfinite(weight)),
             "allreduce_gradients: weight must be finite and >= 0 (or NaN to mark a failed "
             "step), got ",
             weight);
  // Called every training step: the bucket list and the weights message reuse their storage.
  thread_local std::vector<Bucket> buckets;
  make_buckets(params, bucket_bytes, "allreduce_gradients", buckets);
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor g = params[i].grad();
    SOMA_CHECK(!g.defined() || g.shape() == params[i].shape(),
               "allreduce_gradients: the gradient "
               "of parameter ",
               i, " has shape ", g.shape(), ", the parameter ", params[i].shape());
  }
  if (world_size() == 1) return weight;
#ifdef SOMA_WITH_MPI
  const double t0 = now_seconds();
  ++g_stats.calls;
  // Weights and which ranks hold each gradient, in one small message:
  //   meta[0] = sum of weights, meta[1 + i] = ranks that have a gradient for parameter i.
  thread_local std::vector<double> meta;
  meta.assign(params.size() + 1, 0.0);
  meta[0] = weight;
  for (size_t i = 0; i < params.size(); ++i) meta[i + 1] = params[i].grad().defined() ? 1 : 0;
  g_stats.messages += allreduce_in_place(meta.data(), static_cast<int64_t>(meta.size()), kFloat64,
                                         "allreduce_gradients: MPI_Allreduce");
  const double total = meta[0];
  // Failed step somewhere (NaN weight), or nothing to average: leave the gradients alone.
  if (!(total > 0)) {
    g_stats.seconds += now_seconds() - t0;
    return std::isnan(total) ? total : 0.0;
  }
  const double scale = weight / total;

  NoGradGuard no_grad;
  for (const Bucket& b : buckets) {
    // Pack: flat = [w_r / W * grad_i ...], zeros for a gradient this rank lacks. The reduced
    // bucket becomes the storage of the new gradients (views), so unpacking copies nothing.
    Tensor flat = empty({b.numel}, b.dtype);
    int64_t off = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      const Tensor g = params[i].grad();
      const int64_t n = params[i].numel();
      if (g.defined() && scale != 0) {
        const Tensor src = g.contiguous();
        if (b.dtype == kFloat64)
          scaled_copy(flat.data<double>() + off, src.data<double>(), n, scale);
        else
          scaled_copy(flat.data<float>() + off, src.data<float>(), n, static_cast<float>(scale));
      } else {
        flat.narrow(0, off, n).zero_();
      }
      off += n;
    }
    const double t_ring = now_seconds();
    if (b.dtype == kFloat64)
      ring_allreduce(flat.data<double>(), b.numel, MPI_DOUBLE, "allreduce_gradients: MPI_Sendrecv");
    else
      ring_allreduce(flat.data<float>(), b.numel, MPI_FLOAT, "allreduce_gradients: MPI_Sendrecv");
    g_stats.ring_seconds += now_seconds() - t_ring;
    g_stats.bytes += b.numel * static_cast<int64_t>(element_size(b.dtype));
    off = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      Tensor p = params[i];
      const int64_t n = p.numel();
      if (meta[i + 1] > 0)
        p.set_grad(flat.narrow(0, off, n).reshape(p.shape()));
      else
        p.set_grad(Tensor());
      off += n;
    }
  }
  g_stats.seconds += now_seconds() - t0;
  return total;
#else
  return weight;
#endif
}

void allreduce_sum(std::vector<double>& values) {
  if (world_size() == 1 || values.empty()) return;
#ifdef SOMA_WITH_MPI
  allreduce_in_place(values.data(), static_cast<int64_t>(values.size()), kFloat64,
                     "allreduce_sum: MPI_Allreduce");  // not gradient traffic: not counted
#endif
}

void abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef SOMA_WITH_MPI
  if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

CommStats comm_stats() {
  return g_stats;
}

void reset_comm_stats() {
  g_stats = CommStats{};
}

}  // namespace soma::dist
