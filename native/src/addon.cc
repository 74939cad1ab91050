// The N-API face: turns the JS spawn spec into a tracer process (tracer_client.h), and its counters
// and events back into JS values. No decisions are made here; TypeScript validates, resolves and
// explains.
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>

#include "tracer_client.h"

namespace interceptor {
namespace {

std::string StringProp(const Napi::Object& o, const char* key) { return o.Get(key).As<Napi::String>().Utf8Value(); }

std::vector<std::string> StringArray(const Napi::Value& v) {
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

SpawnSpec ParseSpec(const Napi::Object& o) {
  SpawnSpec spec;
  spec.file = StringProp(o, "file");
  spec.argv = StringArray(o.Get("argv"));
  spec.env = StringArray(o.Get("env"));
  spec.cwd = StringProp(o, "cwd");
  Napi::Array stdio = o.Get("stdio").As<Napi::Array>();
  for (uint32_t i = 0; i < 3; i++) spec.stdio[i] = stdio.Get(i).As<Napi::Number>().Int32Value();
  Napi::Array rules = o.Get("rules").As<Napi::Array>();
  for (uint32_t i = 0; i < rules.Length(); i++) {
    Napi::Object r = rules.Get(i).As<Napi::Object>();
    PathRule rule;
    rule.prefix = StringProp(r, "prefix");
    rule.name = StringProp(r, "name");
    rule.dir = StringProp(r, "dir");
    rule.key = StringProp(r, "key");
    rule.always = r.Get("always").As<Napi::Boolean>().Value();
    spec.rules.push_back(std::move(rule));
  }
  return spec;
}

Napi::Object Record(Napi::Env env, const std::vector<std::pair<std::string, uint64_t>>& entries) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [key, n] : entries) o.Set(key, Napi::Number::New(env, static_cast<double>(n)));
  return o;
}

class TracedProcess : public Napi::ObjectWrap<TracedProcess> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TracedProcess",
                       {InstanceAccessor<&TracedProcess::Pid>("pid"), InstanceMethod<&TracedProcess::Counters>("counters"),
                        InstanceMethod<&TracedProcess::Kill>("kill"), InstanceMethod<&TracedProcess::KillAll>("killAll")});
  }

  explicit TracedProcess(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TracedProcess>(info) {
    tracer_ = *info[0].As<Napi::External<std::shared_ptr<TracerClient>>>().Data();
  }

 private:
  Napi::Value Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tracer_->pid()); }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CounterSnapshot s = tracer_->Counters();
    Napi::Object o = Napi::Object::New(env);
    o.Set("stops", Napi::Number::New(env, static_cast<double>(s.stops)));
    o.Set("syscalls", Record(env, s.syscalls));
    o.Set("rewrites", Record(env, s.rewrites));
    o.Set("missed", Record(env, s.missed));
    o.Set("signals", Napi::Number::New(env, static_cast<double>(s.signals)));
    o.Set("tracees", Napi::Number::New(env, static_cast<double>(s.tracees)));
    return o;
  }

  Napi::Value Kill(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), tracer_->Kill(info[0].As<Napi::Number>().Int32Value()));
  }

  Napi::Value KillAll(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), tracer_->KillAll(info[0].As<Napi::Number>().Int32Value()));
  }

  std::shared_ptr<TracerClient> tracer_;
};

// Runs on the JS thread for each event the reader thread queued.
void DeliverEvent(Napi::Env env, Napi::Function callback, std::nullptr_t*, wire::Event* event) {
  std::unique_ptr<wire::Event> owned(event);
  if (env == nullptr) return;  // shutting down
  Napi::Object o = Napi::Object::New(env);
  if (owned->type == wire::EventType::kDone) {
    o.Set("type", "done");
  } else {
    o.Set("type", "exit");
    o.Set("code", owned->exit.code < 0 ? env.Null() : Napi::Number::New(env, owned->exit.code));
    o.Set("signal", Napi::Number::New(env, owned->exit.signal));
  }
  callback.Call({o});
}

using EventChannel = Napi::TypedThreadSafeFunction<std::nullptr_t, wire::Event, DeliverEvent>;

struct AddonData {
  Napi::FunctionReference traced_process;
};

// spawn(spec, onEvent) → TracedProcess; throws an Error with {stage, errno, path} when it cannot start.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = info[0].As<Napi::Object>();
  SpawnSpec spec = ParseSpec(o);
  EventChannel channel = EventChannel::New(env, info[1].As<Napi::Function>(), "hybrid-interceptor", 0, 1);
  auto on_event = [channel](const wire::Event& e) mutable {
    auto* event = new wire::Event(e);
    if (channel.NonBlockingCall(event) != napi_ok) delete event;
    if (e.type == wire::EventType::kDone) channel.Release();
  };
  StartError error;
  std::shared_ptr<TracerClient> tracer = TracerClient::Start(StringProp(o, "tracer"), std::move(spec), on_event, error);
  if (!tracer) {
    channel.Release();
    Napi::Error e = Napi::Error::New(env, "the interceptor could not start the command (" + error.stage + ")");
    e.Set("stage", Napi::String::New(env, error.stage));
    e.Set("errno", Napi::Number::New(env, error.error));
    const char* code = error.error != 0 ? strerrorname_np(error.error) : nullptr;
    e.Set("code", code != nullptr ? Napi::Value(Napi::String::New(env, code)) : env.Null());
    e.Set("path", Napi::String::New(env, error.path));
    throw e;
  }
  auto* holder = new std::shared_ptr<TracerClient>(std::move(tracer));
  Napi::External<std::shared_ptr<TracerClient>> external = Napi::External<std::shared_ptr<TracerClient>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<TracerClient>* p) { delete p; });
  return env.GetInstanceData<AddonData>()->traced_process.New({external});
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->traced_process = Napi::Persistent(TracedProcess::Define(env));
  env.SetInstanceData(data);
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
  return exports;
}

}  // namespace
}  // namespace interceptor

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return interceptor::Init(env, exports); }

NODE_API_MODULE(hybrid_interceptor, InitAddon)
