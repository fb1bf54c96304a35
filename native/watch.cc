// A uv_poll_t on one fd: how a rawio loop lives inside Node's own event loop (`attach()`).
// The Reactor watches its epoll fd, a Ring its registered eventfd; when libuv reports the fd
// ready, the JS callback runs through MakeCallback, so promise continuations scheduled by it
// run right after, as for any Node I/O callback.
//
// The handle polls its own duplicate of the fd (F_DUPFD_CLOEXEC), closed with the handle:
// libuv aborts the process when epoll_ctl fails on a watched fd, which is what happens if
// the caller closes an fd while it is watched. With the duplicate, closing the caller's fd
// cannot reach libuv; the open file stays alive until the watch is closed.
//
// Lifetime: the handle is heap-allocated and outlives the JS object until uv_close's
// callback frees it. While started, the JS object is pinned (a strong reference) so a
// running watch is never collected; an async cleanup hook closes the handle when the
// environment (a worker thread, say) is torn down.
#include <node_api.h>
#include <uv.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "errors.h"
#include "families.h"

namespace rawio {
namespace {

class Watch;

struct Handle {
  uv_poll_t poll;
  int fd;  // the duplicate libuv polls
  Watch* owner;
  napi_async_cleanup_hook_handle hook;
};

class Watch : public Napi::ObjectWrap<Watch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Watch",
        {InstanceMethod<&Watch::Start>("start"), InstanceMethod<&Watch::Stop>("stop"),
         InstanceMethod<&Watch::Ref>("ref"), InstanceMethod<&Watch::Unref>("unref"),
         InstanceMethod<&Watch::Close>("close")});
  }

  Watch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watch>(info) {
    Napi::Env env = info.Env();
    int fd = ArgFd(info, 0);
    if (!info[1].IsFunction()) ThrowType(env, "callback must be a function");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowType(env, "no event loop");
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      int err = errno;
      Napi::Error e = Napi::Error::New(env, std::string(uv_err_name(-err)) + ": " +
                                                uv_strerror(-err) + ", fcntl(F_DUPFD_CLOEXEC)");
      e.Set("errno", Num(env, -err));
      e.Set("code", Napi::String::New(env, uv_err_name(-err)));
      e.Set("syscall", Napi::String::New(env, "fcntl"));
      throw e;
    }
    auto h = std::make_unique<Handle>();
    h->owner = this;
    h->hook = nullptr;
    h->fd = dup;
    int r = uv_poll_init(loop, &h->poll, dup);
    if (r < 0) {
      close(dup);
      // Shaped like the fcntl error above (a SystemError): a regular file or a directory,
      // which epoll refuses, is EPERM here.
      Napi::Error e = Napi::Error::New(
          env, std::string(uv_err_name(r)) + ": " + uv_strerror(r) + ", uv_poll_init");
      e.Set("errno", Num(env, r));
      e.Set("code", Napi::String::New(env, uv_err_name(r)));
      e.Set("syscall", Napi::String::New(env, "uv_poll_init"));
      throw e;
    }
    h->poll.data = h.get();
    napi_add_async_cleanup_hook(env, OnEnvCleanup, h.get(), &h->hook);
    handle_ = h.release();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "rawio.watch");
  }

  ~Watch() override { CloseHandle(); }

 private:
  // start(events): UV_READABLE (1) | UV_WRITABLE (2) | UV_DISCONNECT (4). Returns 0 or -errno.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    int events = static_cast<int>(ArgInt(info, 0, "events", 0, 15));
    if (handle_ == nullptr) return Num(info.Env(), -EBADF);
    int r = uv_poll_start(&handle_->poll, events, OnPoll);
    if (r == 0 && !pinned_) {
      Napi::ObjectWrap<Watch>::Ref();
      pinned_ = true;
    }
    return Num(info.Env(), r);
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(&handle_->poll);
    Unpin();
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    Unpin();
    return info.Env().Undefined();
  }

  void Unpin() {
    if (pinned_) {
      pinned_ = false;
      Napi::ObjectWrap<Watch>::Unref();
    }
  }

  void CloseHandle() {
    if (handle_ == nullptr) return;
    handle_->owner = nullptr;
    CloseNow(handle_);
    handle_ = nullptr;
  }

  // uv_close stops the poll at once (libuv drops the fd from its epoll set there), so the
  // duplicate can be closed now rather than in OnClosed: a closed watch holds no fd.
  static void CloseNow(Handle* h) {
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
    close(h->fd);
  }

  static void OnClosed(uv_handle_t* uvh) {
    Handle* h = static_cast<Handle*>(uvh->data);
    if (h->hook != nullptr) napi_remove_async_cleanup_hook(h->hook);
    delete h;
  }

  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
    Handle* h = static_cast<Handle*>(arg);
    if (h->owner != nullptr) {
      h->owner->handle_ = nullptr;
      h->owner = nullptr;
      CloseNow(h);
    }
  }

  static void OnPoll(uv_poll_t* p, int status, int events) {
    Handle* h = static_cast<Handle*>(p->data);
    Watch* w = h->owner;
    if (w == nullptr) return;
    Napi::Env env = w->Env();
    Napi::HandleScope scope(env);
    try {
      w->callback_.MakeCallback(w->Value(), {Num(env, status), Num(env, events)}, *w->context_);
    } catch (const Napi::Error& e) {
      // An exception from the handler is the process's uncaught exception, as it would be
      // for any Node I/O callback.
      napi_fatal_exception(env, e.Value());
    }
  }

  Handle* handle_ = nullptr;
  bool pinned_ = false;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

// The fd of this thread's libuv loop (its epoll fd), or -1: readable while the loop has
// I/O waiting to be handled. A Reactor that owns its thread (run()) waits on it too, so
// Node's own I/O for this thread (a worker being stopped, a message posted to it) ends the
// wait, and the loop lets libuv turn once.
Napi::Value JsLoopFd(const Napi::CallbackInfo& info) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(info.Env(), &loop) != napi_ok || loop == nullptr)
    return Napi::Number::New(info.Env(), -1);
  return Napi::Number::New(info.Env(), uv_backend_fd(loop));
}

}  // namespace

void InitWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("Watch", Watch::Define(env));
  exports.Set("loopFd", Napi::Function::New(env, JsLoopFd));
}

}  // namespace rawio
