// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the raw-CUDA baselines (compiled by nvcc in gpu_arms.cu):
// empty-kernel launch + sync, one-node graph + sync, the mapped-memory
// ping-pong floor, back-to-back launches, a many-node graph replayed, and a
// large cuBLAS GEMM and a host-to-device copy for the interference arm. Plain C++ interface: the host
// side of the harness never includes CUDA device headers.
//
// Rules these functions follow (a megaring runtime may be alive while some of
// them run): no cudaDeviceSynchronize, no cudaMalloc/cudaFree/cudaFreeHost,
// only non-blocking streams, waits on the harness's own streams and events.
// Everything is allocated and every kernel/cuBLAS path is loaded by init(),
// before any runtime exists, and left to process exit to free
// (finish_report in report.cpp says why).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace megaring {
struct Consumer;
}

namespace mrbench::gpu {

struct DeviceInfo {
  bool available = false;
  std::string why_not;  // when !available
  std::string name;
  std::string pci_bus_id;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int driver_version = 0;   // cudaDriverGetVersion, e.g. 13000
  int runtime_version = 0;  // cudaRuntimeGetVersion
  int clock_khz = 0;        // cudaDevAttrClockRate (peak SM clock)
  int mem_clock_khz = 0;    // cudaDevAttrMemoryClockRate (peak)
  int mem_bus_width = 0;
  long long total_mem = 0;
  int host_native_atomics = 0;
  int cooperative_launch = 0;
};

// Queries device `device` (never fails: a missing driver is reported in
// why_not). Clears any CUDA error it caused.
DeviceInfo query_device(int device);

// Whether this binary was built with cuBLAS (the GEMM arm).
bool have_cublas();

struct InitOptions {
  int device = 0;
  int graph_nodes = 1000;  // nodes of the many-node graph
  int gemm_n = 8192;       // square BF16 GEMM, FP32 accumulate; 0 = no GEMM
  size_t copy_bytes = 0;   // pinned host -> device copy (interference on PCIe); 0 = none
};

// Creates streams, events, the one-node and many-node graphs, the ping-pong
// flags, the cuBLAS handle, GEMM operands and workspace, the copy buffers;
// runs every kernel, the GEMM and the copy once (loads their modules). Call
// before creating any runtime.
bool init(const InitOptions& options, std::string* error);

// Latency arms: one sample (ns, host steady clock) per iteration.
bool launch_sync_latency(int warmup, int iters, std::vector<double>* ns, std::string* error);
bool graph_sync_latency(int warmup, int iters, std::vector<double>* ns, std::string* error);
// Persistent 1-thread kernel echoing a host-mapped flag (system-scope
// acquire/release on both sides): the CPU -> GPU -> CPU floor.
bool pingpong_latency(int warmup, int iters, std::vector<double>* ns, std::string* error);

// How the ping-pong kernel reads one host -> device message: the floor's one
// word, and the slot layouts a ring could use. The same echo path for all, so
// the difference between two arms is the read alone. Each message's content
// is checked on the device; a message seen torn (any word stale) fails the
// arm, naming the count: that layout is unsafe on this machine.
enum class ReadLayout {
  kFlag,        // one 8-byte word, acquire: the floor (pingpong_latency)
  kHeaderBody,  // megaring's ABI v2 slot (64 bytes): acquire the header, then
                // read the body (detail::copy_slot_body): two dependent reads
  kFlagged,     // 128 bytes of 8-byte words, each a 4-byte payload beside the
                // message's 4-byte flag (NCCL's LL): one read of every word at
                // once, valid when every flag is the message's
  kFlaggedAcquire,  // kFlagged plus word 0 read again with acquire, last: what
                    // a layout needs to order later reads of host data
};
bool read_layout_latency(ReadLayout layout, int warmup, int iters, std::vector<double>* ns,
                         std::string* error);

// Throughput arms: one trial each, kernels per second.
bool launch_throughput(int launches, double* kernels_per_s, std::string* error);
bool graph_throughput(int replays, double* kernels_per_s, std::string* error);
int graph_nodes();

// GEMM (interference). gemm_start() enqueues `reps` GEMMs between two events
// on the GEMM stream; gemm_wait() polls the stop event until it completes or
// `timeout_s` passes (then *timed_out = true and the GEMMs are still queued:
// stop whatever starves them, then call gemm_wait again with a long timeout).
bool gemm_ready();
int gemm_n();
double gemm_flops();  // per GEMM
// sm_count_target: cublasSetSmCountTarget for these GEMMs (0: all SMs, the
// default). A kernel that shares the GPU can tell cuBLAS how many SMs are
// left, so that it sizes its grid (and picks its kernel) for those.
bool gemm_start(int reps, int sm_count_target, std::string* error);
bool gemm_wait(double timeout_s, double* ms_total, bool* timed_out, std::string* error);

// The built-in opcodes (megaring::NoUserOps) in one-warp blocks of at most
// 32 registers a thread, for the interference arm: 1,024 registers a block
// instead of the built-in consumer's 8,192, in one quarter of the SM's
// register file instead of all four (handlers are block-wide, so
// FILL/COPY/REDUCE run slower in it; NOPs do not).
const megaring::Consumer& narrow_consumer();
// Registers a thread of the megakernel (no timeline) of the built-in
// consumer or of narrow_consumer(), as cudaFuncGetAttributes reports them;
// -1 if the query failed.
int megakernel_registers(bool narrow);

// Host-to-device bandwidth (interference arm): `reps` copies of copy_bytes
// from pinned host memory on a stream of their own, timed with events. An
// idle megakernel's polls are PCIe reads whose completions travel the same
// direction as these copies.
bool h2d_ready();
bool h2d_copy_gbps(int reps, double* gbps, std::string* error);

}  // namespace mrbench::gpu
