// Job: runs `work` on the libuv thread pool and settles a promise on the main thread — the one way the binding
// modules run engine calls (so progress output and SIGINT keep working). Engine errors (vr::Error, bad_alloc)
// reject the promise with a one-line message.
#pragma once
#include <napi.h>

#include <functional>
#include <new>

namespace vr::addon {

// Runs `work` on the thread pool; `done` converts the result on the main thread; exceptions reject.
template <class Result>
class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;
  Job(Napi::Env env, Work work, Done done, std::function<void()> finally = nullptr)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)), finally_(std::move(finally)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      result_ = work_();
    } catch (const std::bad_alloc&) {
      SetError("out of memory (host allocation failed)");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    if (finally_) finally_();
    deferred_.Resolve(done_(Env(), result_));
  }
  void OnError(const Napi::Error& e) override {
    if (finally_) finally_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::function<void()> finally_;
  Result result_{};
};

}  // namespace vr::addon
