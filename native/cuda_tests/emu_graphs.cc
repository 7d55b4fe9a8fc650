// Tests of the emulator's stream capture and CUDA graphs (native/cuda_emu/emu_graphs.h): captured work is recorded
// and runs only when the graph is launched, in order, with the arguments fixed at capture and pinned host memory
// read at replay; each call CUDA forbids during a global-mode capture fails with CUDA's error code and
// invalidates the capture. Expected values and codes come from the CUDA runtime documentation, not the emulator.
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "cuda_emu/cuda_compat.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

__global__ void scale_add_kernel(float* x, const float* y, float a, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = a * x[i] + y[i];
}

struct Fixture {
  static constexpr int n = 32;
  cudaStream_t s = nullptr;
  float *x = nullptr, *y = nullptr, *pin = nullptr;
  std::vector<float> host = std::vector<float>(n);
  Fixture(unsigned flags = cudaStreamDefault) {
    cudaStreamCreateWithFlags(&s, flags);
    cudaMalloc(&x, n * sizeof(float));
    cudaMalloc(&y, n * sizeof(float));
    cudaHostAlloc(reinterpret_cast<void**>(&pin), n * sizeof(float), 0);
    for (int i = 0; i < n; i++) host[i] = float(i);
    cudaMemcpy(x, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemset(y, 0, n * sizeof(float));
  }
  ~Fixture() {
    cudaStreamDestroy(s);
    cudaFree(x);
    cudaFree(y);
    cudaFreeHost(pin);
    (void)cudaGetLastError();
  }
  std::vector<float> read_x() {
    std::vector<float> out(n);
    cudaMemcpy(out.data(), x, n * sizeof(float), cudaMemcpyDeviceToHost);
    return out;
  }
};

VR_TEST(cuda_emu_graph_capture_and_replay) {
  Fixture f;
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
  check_true("emu graphs: a fresh stream is not capturing",
             cudaStreamIsCapturing(f.s, &st) == cudaSuccess && st == cudaStreamCaptureStatusNone);
  check_true("emu graphs: the null stream cannot capture",
             cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal) == cudaErrorStreamCaptureUnsupported);
  (void)cudaGetLastError();
  check_true("emu graphs: begin capture", cudaStreamBeginCapture(f.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  check_true("emu graphs: a second begin on a capturing stream fails",
             cudaStreamBeginCapture(f.s, cudaStreamCaptureModeGlobal) == cudaErrorIllegalState);
  (void)cudaGetLastError();
  check_true("emu graphs: the stream reports an active capture",
             cudaStreamIsCapturing(f.s, &st) == cudaSuccess && st == cudaStreamCaptureStatusActive);
  // y = pin (read at replay), x = 2 x + y, then x[0] = 0 (memset of one float)
  check_true("emu graphs: a pinned upload is recorded",
             cudaMemcpyAsync(f.y, f.pin, Fixture::n * sizeof(float), cudaMemcpyHostToDevice, f.s) == cudaSuccess);
  check_true("emu graphs: a kernel launch is recorded",
             cuda_launch(scale_add_kernel, dim3(1), dim3(64), 0, f.s, f.x, f.y, 2.0f, Fixture::n) == cudaSuccess);
  check_true("emu graphs: a memset is recorded", cudaMemsetAsync(f.x, 0, sizeof(float), f.s) == cudaSuccess);
  cudaGraph_t g = nullptr;
  check_true("emu graphs: end capture gives a graph", cudaStreamEndCapture(f.s, &g) == cudaSuccess && g != nullptr);
  check_true("emu graphs: ending again (not capturing) fails",
             [&] { cudaGraph_t g2 = nullptr; return cudaStreamEndCapture(f.s, &g2) == cudaErrorIllegalState; }());
  (void)cudaGetLastError();
  std::vector<float> x = f.read_x();
  check_true("emu graphs: nothing captured has run", x[0] == 0.f && x[5] == 5.f && x[31] == 31.f);
  cudaGraphExec_t exec = nullptr;
  check_true("emu graphs: instantiate", cudaGraphInstantiate(&exec, g, 0) == cudaSuccess && exec != nullptr);
  check_true("emu graphs: the graph can go once instantiated", cudaGraphDestroy(g) == cudaSuccess);
  for (int i = 0; i < Fixture::n; i++) f.pin[i] = 100.f;
  check_true("emu graphs: launch", cudaGraphLaunch(exec, f.s) == cudaSuccess);
  cudaStreamSynchronize(f.s);
  x = f.read_x();
  check_true("emu graphs: replay 1 ran in order with the pinned values of launch time", x[5] == 2.f * 5.f + 100.f);
  check_true("emu graphs: replay 1: the memset came after the kernel", x[0] == 0.f);
  for (int i = 0; i < Fixture::n; i++) f.pin[i] = 1.f;
  cudaGraphLaunch(exec, f.s);
  x = f.read_x();  // the null stream's copy waits for the blocking stream's queued graph
  check_true("emu graphs: replay 2 reads the refilled pinned buffer", x[5] == 2.f * 110.f + 1.f);
  check_true("emu graphs: replay 2, last element", x[31] == 2.f * (2.f * 31.f + 100.f) + 1.f);
  check_true("emu graphs: destroy the executable graph", cudaGraphExecDestroy(exec) == cudaSuccess);
  check_true("emu graphs: no error left", cudaGetLastError() == cudaSuccess);
}

VR_TEST(cuda_emu_graph_instantiate_failure_switch) {
  Fixture f;
  cudaStreamBeginCapture(f.s, cudaStreamCaptureModeGlobal);
  cuda_launch(scale_add_kernel, dim3(1), dim3(64), 0, f.s, f.x, f.y, 2.0f, Fixture::n);
  cudaGraph_t g = nullptr;
  cudaStreamEndCapture(f.s, &g);
  setenv("VREFLECT_CUDA_EMU_GRAPH_FAIL", "1", 1);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
  unsetenv("VREFLECT_CUDA_EMU_GRAPH_FAIL");
  check_true("emu graphs: VREFLECT_CUDA_EMU_GRAPH_FAIL=1 makes instantiation fail",
             e == cudaErrorNotSupported && exec == nullptr);
  (void)cudaGetLastError();
  cudaGraphDestroy(g);
}

// One forbidden call during a capture: its code, the capture invalidated, EndCapture refusing, nothing recorded run.
void check_forbidden(const char* what, cudaError_t want, const std::function<cudaError_t(Fixture&)>& call,
                     unsigned flags = cudaStreamDefault) {
  Fixture f(flags);
  cudaStreamBeginCapture(f.s, cudaStreamCaptureModeGlobal);
  cuda_launch(scale_add_kernel, dim3(1), dim3(64), 0, f.s, f.x, f.y, 2.0f, Fixture::n);
  const cudaError_t got = call(f);
  (void)cudaGetLastError();
  check_true(std::string("emu graphs: ") + what + " fails with " + cudaGetErrorString(want) + " (got " +
                 std::to_string(int(got)) + ")",
             got == want);
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  cudaStreamIsCapturing(f.s, &st);
  check_true(std::string("emu graphs: ") + what + " invalidates the capture", st == cudaStreamCaptureStatusInvalidated);
  check_true(std::string("emu graphs: ") + what + ": later work on the stream is refused",
             cudaMemsetAsync(f.x, 0, 4, f.s) == cudaErrorStreamCaptureInvalidated);
  cudaGraph_t g = reinterpret_cast<cudaGraph_t>(&f);
  check_true(std::string("emu graphs: ") + what + ": end capture answers cudaErrorStreamCaptureInvalidated",
             cudaStreamEndCapture(f.s, &g) == cudaErrorStreamCaptureInvalidated && g == nullptr);
  (void)cudaGetLastError();
  const std::vector<float> x = f.read_x();
  check_true(std::string("emu graphs: ") + what + ": the captured kernel never ran", x[3] == 3.f);
  cudaStreamIsCapturing(f.s, &st);
  check_true(std::string("emu graphs: ") + what + ": the stream is usable again",
             st == cudaStreamCaptureStatusNone && cudaMemsetAsync(f.x, 0, 4, f.s) == cudaSuccess);
}

VR_TEST(cuda_emu_graph_forbidden_calls) {
  check_forbidden("cudaStreamSynchronize on the capturing stream", cudaErrorStreamCaptureUnsupported,
                  [](Fixture& f) { return cudaStreamSynchronize(f.s); });
  check_forbidden("cudaDeviceSynchronize", cudaErrorStreamCaptureUnsupported,
                  [](Fixture&) { return cudaDeviceSynchronize(); });
  check_forbidden("a copy from pageable host memory", cudaErrorStreamCaptureUnsupported, [](Fixture& f) {
    return cudaMemcpyAsync(f.y, f.host.data(), 4 * sizeof(float), cudaMemcpyHostToDevice, f.s);
  });
  check_forbidden("a copy to pageable host memory", cudaErrorStreamCaptureUnsupported, [](Fixture& f) {
    return cudaMemcpyAsync(f.host.data(), f.x, 4 * sizeof(float), cudaMemcpyDeviceToHost, f.s);
  });
  check_forbidden("a kernel on the legacy null stream", cudaErrorStreamCaptureImplicit, [](Fixture& f) {
    return cuda_launch(scale_add_kernel, dim3(1), dim3(64), 0, nullptr, f.y, f.y, 1.0f, Fixture::n);
  });
  check_forbidden("a synchronous cudaMemcpy (legacy stream)", cudaErrorStreamCaptureImplicit,
                  [](Fixture& f) { return cudaMemcpy(f.y, f.x, 4, cudaMemcpyDeviceToDevice); });
  check_forbidden("cudaMalloc", cudaErrorStreamCaptureUnsupported, [](Fixture&) {
    void* p = reinterpret_cast<void*>(1);
    const cudaError_t e = cudaMalloc(&p, 64);
    return p == nullptr ? e : cudaErrorUnknown;
  });
  check_forbidden("cudaFree", cudaErrorStreamCaptureUnsupported, [](Fixture& f) { return cudaFree(f.y); });
  check_forbidden("a query of an event recorded in the capture", cudaErrorCapturedEvent, [](Fixture& f) {
    cudaEvent_t ev = nullptr;
    cudaEventCreate(&ev);
    cudaEventRecord(ev, f.s);
    const cudaError_t e = cudaEventQuery(ev);
    cudaEventDestroy(ev);
    return e;
  });
  check_forbidden("a wait on an event recorded outside the capture", cudaErrorStreamCaptureIsolation, [](Fixture& f) {
    cudaEvent_t ev = nullptr;
    cudaEventCreate(&ev);
    cudaEventRecord(ev, nullptr);
    const cudaError_t e = cudaStreamWaitEvent(f.s, ev, 0);
    cudaEventDestroy(ev);
    return e;
  });
}

// A NON-blocking capturing stream does not make the legacy stream wait for it: null-stream work stays legal.
VR_TEST(cuda_emu_graph_nonblocking_capture_allows_null_stream) {
  Fixture f(cudaStreamNonBlocking);
  cudaStreamBeginCapture(f.s, cudaStreamCaptureModeGlobal);
  check_true("emu graphs: null-stream work beside a non-blocking capture runs",
             cudaMemsetAsync(f.y, 0, 4, nullptr) == cudaSuccess);
  cudaGraph_t g = nullptr;
  check_true("emu graphs: ... and the capture is still valid", cudaStreamEndCapture(f.s, &g) == cudaSuccess);
  cudaGraphDestroy(g);
}

}  // namespace
}  // namespace vr::test
