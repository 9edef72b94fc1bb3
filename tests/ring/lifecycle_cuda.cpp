// SPDX-License-Identifier: Apache-2.0
// Lifecycle beside the application's own CUDA work: user kernels launched
// next to the persistent consumer, a stream capture elsewhere, and stale
// errors of the calling thread. The CPU instances skip what needs CUDA.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <cuda.h>  // driver types for an entry point only: libcuda is not linked
#include <cuda_runtime_api.h>

#include "ring_fixture.hpp"
#include "runtime/runtime_internal.hpp"
#include "user_kernel.hpp"

namespace megaring_test {
namespace {

using megaring::detail::RuntimeInternals;

// A kernel of the user's, never launched before, launched on its own stream
// while the persistent kernel runs. The fixture's device check initialises
// CUDA before Runtime::create could ask for eager loading, so this runs in
// the process's own module-loading mode (lazy unless CUDA_MODULE_LOADING
// says otherwise; lazy is also PyTorch's choice). Were loading a kernel next
// to a resident one to need a context synchronisation, the launch would
// never return: the test reports that instead of hanging on it, and the
// README's advice on module loading rests on its answer.

// The process's module loading mode as the driver latched it at
// initialisation (CUDA_MODULE_LOADING may have been set since).
std::string module_loading_mode() {
  using GetMode = CUresult (*)(CUmoduleLoadingMode*);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion("cuModuleGetLoadingMode", &fn, 12000, cudaEnableDefault,
                                       &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    (void)cudaGetLastError();
    return "unknown (no cuModuleGetLoadingMode)";
  }
  CUmoduleLoadingMode mode{};
  if (reinterpret_cast<GetMode>(fn)(&mode) != CUDA_SUCCESS) return "unknown";
  return mode == CU_MODULE_LAZY_LOADING ? "lazy" : mode == CU_MODULE_EAGER_LOADING ? "eager" : "?";
}

// A launch of a user kernel on another thread, beside the running consumer:
// allocate, launch, copy the value back, free. Detached, owning its state,
// so that a launch that blocks cannot hang the test.
class LaunchBeside {
 public:
  using Launch = cudaError_t (*)(int*, int, cudaStream_t);
  explicit LaunchBeside(Launch launch) : probe_(std::make_shared<Probe>()) {
    std::thread([probe = probe_, launch] {
      cudaStream_t stream = nullptr;
      int* device_value = nullptr;
      int value = 0;
      cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      if (err == cudaSuccess)
        err = cudaMallocAsync(reinterpret_cast<void**>(&device_value), sizeof(int), stream);
      if (err == cudaSuccess) err = launch(device_value, 42, stream);
      if (err == cudaSuccess)
        err = cudaMemcpyAsync(&value, device_value, sizeof(int), cudaMemcpyDeviceToHost, stream);
      if (err == cudaSuccess) err = cudaFreeAsync(device_value, stream);
      if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
      if (stream != nullptr) (void)cudaStreamDestroy(stream);
      probe->err = err;
      probe->value = value;
      probe->done.store(true, std::memory_order_release);  // RELEASE: err and value
    }).detach();
  }
  // True once the launch's thread finished, within `limit`.
  bool wait(std::chrono::nanoseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!probe_->done.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(1));
    return probe_->done.load(std::memory_order_acquire);  // ACQUIRE: err and value
  }
  // Once wait() returned true.
  void expect_stored_42() const {
    EXPECT_EQ(probe_->err, cudaSuccess) << cudaGetErrorString(probe_->err);
    EXPECT_EQ(probe_->value, 42);
  }

 private:
  struct Probe {
    std::atomic<bool> done{false};
    cudaError_t err = cudaSuccess;  // written before done's release
    int value = 0;
  };
  std::shared_ptr<Probe> probe_;
};

// What the README tells users to do: load every kernel that may run beside
// the consumer before Runtime::create (or run with CUDA_MODULE_LOADING=EAGER).
TEST_P(RingLifecycleTest, AUserKernelLoadedBeforeTheConsumerStartsRunsBesideIt) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "a CUDA launch beside the persistent kernel";
  ASSERT_EQ(preload_store_value(), cudaSuccess);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(1), &c));
  LaunchBeside launch(launch_store_value_preloaded);
  if (!launch.wait(seconds(10))) {
    MR_EXPECT_OK(rt->abort());
    FAIL() << "a preloaded user kernel did not complete beside the consumer in 10 s (module "
           << "loading: " << module_loading_mode() << "); after abort it "
           << (launch.wait(seconds(10)) ? "completed" : "still had not");
  }
  launch.expect_stored_42();
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(2), &c));  // the consumer still serves
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// A kernel first launched while the consumer runs. Under lazy loading its
// launch loads it, and the load may wait for the device to go idle, which a
// persistent kernel never does unasked (CUDA programming guide, lazy loading:
// "concurrent execution"); the first H100 run saw it wait until the consumer
// stopped. What the README promises either way: nothing fails, and the
// launch completes once the consumer stops; eager loading never waits.
TEST_P(RingLifecycleTest, ALazilyLoadedUserKernelRunsAtTheLatestOnceTheConsumerStops) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "a CUDA launch beside the persistent kernel";
  static bool launched_before = false;  // a second run in one process finds it loaded
  if (launched_before) GTEST_SKIP() << "the lazy kernel was loaded by an earlier run";
  launched_before = true;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(1), &c));
  const std::string mode = module_loading_mode();
  LaunchBeside launch(launch_store_value_lazily);
  const bool beside = launch.wait(mode == "eager" ? seconds(10) : seconds(3));
  std::printf("module loading: %s; the first launch %s\n", mode.c_str(),
              beside ? "completed beside the consumer" : "waited for the consumer to stop");
  if (mode == "eager") EXPECT_TRUE(beside) << "an eagerly loaded kernel waited";
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(2), &c));  // the consumer still serves
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  ASSERT_TRUE(launch.wait(seconds(10))) << "the launch did not complete after shutdown";
  launch.expect_stored_42();
}

// Another thread's stream capture in the global mode (torch.cuda.graph's
// default) is in progress while the runtime waits, checks its consumer's
// health and allocates, copies and frees a buffer. In that mode CUDA refuses
// "potentially unsafe" calls such as cudaStreamQuery from every other thread
// and invalidates the capture: megaring's calls must do neither, and a
// refusal must never be taken for a dead consumer.
TEST_P(RingLifecycleTest, AGlobalStreamCaptureElsewhereNeitherFailsNorIsBroken) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "CUDA stream capture";
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  cudaStream_t stream = nullptr;
  int* device_word = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMallocAsync(reinterpret_cast<void**>(&device_word), sizeof(int), stream),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

  std::atomic<int> phase{0};  // 1: capturing; 2: end the capture
  cudaError_t begin_err = cudaErrorUnknown, end_err = cudaErrorUnknown;
  cudaGraph_t graph = nullptr;
  std::thread capturer([&] {
    begin_err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
    // A memset node: capturing it loads no kernel.
    if (begin_err == cudaSuccess) (void)cudaMemsetAsync(device_word, 0, sizeof(int), stream);
    phase.store(1, std::memory_order_release);  // RELEASE: begin_err
    while (phase.load(std::memory_order_acquire) != 2)
      std::this_thread::sleep_for(milliseconds(1));
    if (begin_err == cudaSuccess) end_err = cudaStreamEndCapture(stream, &graph);
  });
  while (phase.load(std::memory_order_acquire) != 1) std::this_thread::sleep_for(milliseconds(1));

  // A wait that times out (its health check is certain), one that does not
  // (more checks once it sleeps), then a buffer's life.
  Ticket slow;
  PublishOptions keep;
  keep.keep_result = true;
  Completion c;
  const uint64_t checks_before = RuntimeInternals::health_checks(*rt);
  Status wait_st = rt->publish(ops::delay_ns(50'000'000), &slow, keep);
  Status timeout_st = rt->wait(slow, &c, milliseconds(1));
  const uint64_t checks_after_timeout = RuntimeInternals::health_checks(*rt);
  if (wait_st) wait_st = rt->wait(slow, &c, scaled(seconds(10)));
  BufferHandle buffer = 0;
  const uint64_t written = 0x1234;
  uint64_t read_back = 0;
  Status buffer_st = rt->alloc_buffer(64, &buffer);
  if (buffer_st) buffer_st = rt->write_buffer(buffer, 0, &written, sizeof(written));
  if (buffer_st) buffer_st = rt->read_buffer(buffer, 0, &read_back, sizeof(read_back));
  if (buffer_st) buffer_st = rt->free_buffer(buffer);
  phase.store(2, std::memory_order_release);
  capturer.join();

  MR_EXPECT_RESULT(timeout_st, Result::kTimeout);
  EXPECT_GT(checks_after_timeout, checks_before) << "no health check during the capture";
  MR_EXPECT_OK(wait_st);
  EXPECT_TRUE(c.ok());
  MR_EXPECT_OK(buffer_st);
  EXPECT_EQ(read_back, written);
  EXPECT_EQ(begin_err, cudaSuccess) << cudaGetErrorString(begin_err);
  EXPECT_EQ(end_err, cudaSuccess) << "the capture was invalidated: " << cudaGetErrorString(end_err);
  EXPECT_NE(graph, nullptr);
  if (graph != nullptr) EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(device_word, stream), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// suspend() and resume() while another thread captures a stream in global
// mode (torch.cuda.graph() inside Runtime.paused() from Python, with
// another thread resuming): the join's stream queries, the relaunch's word
// copies and its launch run in relaxed capture mode (CudaCallScope), so
// none is refused (a refused relaunch would fail the runtime) and the
// capture survives.
TEST_P(RingLifecycleTest, SuspendAndResumeBesideAGlobalCaptureElsewhere) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "CUDA stream capture";
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  cudaStream_t stream = nullptr;
  int* device_word = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMallocAsync(reinterpret_cast<void**>(&device_word), sizeof(int), stream),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  Completion c;
  MR_ASSERT_OK(rt->call(ops::nop(1), &c, scaled(seconds(10))));

  std::atomic<int> phase{0};  // 1: capturing; 2: end the capture
  cudaError_t begin_err = cudaErrorUnknown, end_err = cudaErrorUnknown;
  cudaGraph_t graph = nullptr;
  std::thread capturer([&] {
    begin_err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
    if (begin_err == cudaSuccess) (void)cudaMemsetAsync(device_word, 0, sizeof(int), stream);
    phase.store(1, std::memory_order_release);  // RELEASE: begin_err
    while (phase.load(std::memory_order_acquire) != 2)
      std::this_thread::sleep_for(milliseconds(1));
    if (begin_err == cudaSuccess) end_err = cudaStreamEndCapture(stream, &graph);
  });
  while (phase.load(std::memory_order_acquire) != 1) std::this_thread::sleep_for(milliseconds(1));
  Ticket pending;
  PublishOptions keep;
  keep.keep_result = true;
  const Status suspend_st = rt->suspend(scaled(seconds(10)));
  const Status publish_st = rt->publish(ops::nop(2), &pending, keep);
  const Status resume_st = rt->resume();
  Status wait_st = publish_st;
  if (wait_st) wait_st = rt->wait(pending, &c, scaled(seconds(10)));
  phase.store(2, std::memory_order_release);
  capturer.join();

  MR_EXPECT_OK(suspend_st);
  MR_EXPECT_OK(resume_st);
  MR_EXPECT_OK(wait_st);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 2u);
  EXPECT_EQ(begin_err, cudaSuccess) << cudaGetErrorString(begin_err);
  EXPECT_EQ(end_err, cudaSuccess) << "the capture was invalidated: " << cudaGetErrorString(end_err);
  if (graph != nullptr) EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(device_word, stream), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// The runtime's health checks query the kernel's stream, and the CUDA
// runtime records the cudaErrorNotReady they get as the thread's last error.
// Neither that nor any other stale error of the calling thread may make a
// later launch look failed (the kernel would run on memory freed under it),
// and megaring must not leave its own NotReady behind for the caller.
TEST_P(RingLifecycleTest, StaleErrorsOfTheCallingThreadNeitherFailNorLeak) {
  for (int round = 0; round < 2; ++round) {
    if (backend() == Backend::kCuda) {
      int count = 0;
      ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
      // A non-sticky error left unread in this thread.
      ASSERT_NE(cudaSetDevice(count), cudaSuccess);
    }
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
    Completion c;
    call_ok(*rt, ops::nop(7), &c);
    EXPECT_EQ(c.result, 7u);
    // A wait that times out: it checks health at least once, before it
    // reports the timeout (and more often while it sleeps).
    Ticket slow;
    PublishOptions keep;
    keep.keep_result = true;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(200'000'000), &slow, keep));
    const uint64_t checks_before = RuntimeInternals::health_checks(*rt);
    MR_EXPECT_RESULT(rt->wait(slow, &c, milliseconds(30)), Result::kTimeout);
    EXPECT_GT(RuntimeInternals::health_checks(*rt), checks_before);
    if (backend() == Backend::kCuda)
      EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "megaring left an error in the caller's thread";
    MR_ASSERT_OK(rt->wait(slow, &c, scaled(seconds(10))));
    EXPECT_TRUE(c.ok());
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

}  // namespace
}  // namespace megaring_test
