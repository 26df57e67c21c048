// StreamFence plugin SDK: header-only C++ wrapper over the C ABI in plugin.h.
//
// A plugin author writes one small class and one macro line:
//
//   class MyPolicy : public streamfence::OverflowPolicy {
//   public:
//     MyPolicy(const streamfence::Host& host, const streamfence::Options& opts) {}
//     streamfence::Verdict onEnqueue(streamfence::Lane& lane, const streamfence::Message& in, bool fits) override {
//       return fits ? streamfence::Verdict::accept() : streamfence::Verdict::reject("my reason");
//     }
//   };
//   STREAMFENCE_OVERFLOW_POLICY(MyPolicy, "my_policy", "1.0.0", "what it does")
//
// Nothing of C++ crosses the boundary: the macro generates the C entry symbol and
// trampolines that catch every exception and turn it into an error return.
#pragma once

// The host builds with SF_HOST_BUILD and keeps its own helpers: this wrapper is compiled into
// plugins only, so nothing of it can become part of the host (docs/plugin-abi.md).
#ifdef SF_HOST_BUILD
#error "streamfence/plugin.hpp is for plugins; the host uses only the C ABI in streamfence/plugin.h"
#endif

#include <streamfence/plugin.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <string>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace streamfence {

inline std::string_view view(sf_str s) { return std::string_view(s.ptr ? s.ptr : "", s.len); }
inline sf_str str(std::string_view s) { return sf_str{s.data(), s.size()}; }

// Element i of an array that crossed the boundary: arrays are walked by their elements'
// struct_size (plugin.h), so a host with larger elements is read correctly.
template <class T>
const T& element(const T* first, size_t i) {
    const size_t stride = first->struct_size ? first->struct_size : sizeof(T);
    return *reinterpret_cast<const T*>(reinterpret_cast<const char*>(first) + i * stride);
}

// Appends text to a host writer; a NULL writer (or one without write) takes nothing.
inline void writeText(sf_writer* w, std::string_view text) {
    if (w && w->write && !text.empty()) w->write(w->ctx, text.data(), text.size());
}

// Options copied out of sf_options (which is only valid during init).
class Options {
public:
    Options() = default;
    explicit Options(const sf_options* o) {
        if (!o) return;
        for (uint32_t i = 0; o->items && i < o->count; ++i) {
            const sf_option& item = element(o->items, i);
            flat_[std::string(view(item.key))] = std::string(view(item.value));
        }
        json_ = o->json ? o->json : "{}";
        instance_ = o->instance_name ? o->instance_name : "";
    }
    bool has(const std::string& k) const { return flat_.count(k) != 0; }
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = flat_.find(k);
        return it == flat_.end() ? def : it->second;
    }
    long long getInt(const std::string& k, long long def) const {
        auto it = flat_.find(k);
        if (it == flat_.end()) return def;
        char* end = nullptr;
        long long v = std::strtoll(it->second.c_str(), &end, 10);
        if (!end || *end) throw std::invalid_argument("option " + k + ": expected an integer, got \"" + it->second + "\"");
        return v;
    }
    bool getBool(const std::string& k, bool def) const {
        auto it = flat_.find(k);
        if (it == flat_.end()) return def;
        if (it->second == "true") return true;
        if (it->second == "false") return false;
        throw std::invalid_argument("option " + k + ": expected true or false, got \"" + it->second + "\"");
    }
    // Keys directly under prefix: children("tokens") -> {"alice": "...", ...}
    std::map<std::string, std::string> children(const std::string& prefix) const {
        std::map<std::string, std::string> out;
        std::string p = prefix + ".";
        for (auto& kv : flat_)
            if (kv.first.compare(0, p.size(), p) == 0) out[kv.first.substr(p.size())] = kv.second;
        return out;
    }
    const std::map<std::string, std::string>& all() const { return flat_; }
    const std::string& json() const { return json_; }
    const std::string& instanceName() const { return instance_; }

private:
    std::map<std::string, std::string> flat_;
    std::string json_ = "{}";
    std::string instance_;
};

// The host's services, valid for the plugin instance's lifetime.
class Host {
public:
    explicit Host(const sf_host_api* api = nullptr) : api_(api) {}
    void log(int level, const char* event, const std::string& msg) const {
        if (api_ && api_->log) api_->log(api_->host_ctx, level, event, msg.c_str());
    }
    void info(const char* event, const std::string& msg) const { log(SF_LOG_INFO, event, msg); }
    void warn(const char* event, const std::string& msg) const { log(SF_LOG_WARN, event, msg); }
    void error(const char* event, const std::string& msg) const { log(SF_LOG_ERROR, event, msg); }
    uint64_t nowMs() const { return api_ && api_->now_ms ? api_->now_ms(api_->host_ctx) : 0; }
    uint64_t wallMs() const { return api_ && api_->wall_ms ? api_->wall_ms(api_->host_ctx) : 0; }
    const sf_host_api* raw() const { return api_; }

private:
    const sf_host_api* api_;
};

// ------------------------------------------------------------------ overflow policy

struct Message {
    std::string_view payloadJson;
    uint64_t bytes = 0;
    std::string_view key;
    bool inFlight = false;
    static Message from(const sf_message_view& m) {
        return Message{view(m.payload_json), m.bytes, view(m.key), (m.flags & SF_ENTRY_IN_FLIGHT) != 0};
    }
};

class Lane {
public:
    explicit Lane(const sf_lane_view* v) : v_(v) {}
    uint32_t count() const { return v_->count(v_->lane); }
    uint64_t bytes() const { return v_->bytes(v_->lane); }
    uint32_t maxMessages() const { return v_->max_messages; }
    uint64_t maxBytes() const { return v_->max_bytes; }
    std::string_view topic() const { return view(v_->topic); }
    std::string_view ns() const { return view(v_->ns); }
    bool entry(uint32_t i, Message& out) const {
        sf_message_view m{};
        m.struct_size = sizeof m;
        if (v_->entry(v_->lane, i, &m) != SF_OK) return false;
        out = Message::from(m);
        return true;
    }
    bool remove(uint32_t i) { return v_->remove(v_->lane, i) == SF_OK; }
    bool replaceWithIncoming(uint32_t i) { return v_->replace_with_incoming(v_->lane, i) == SF_OK; }
    bool canSpill() const { return v_->can_spill && v_->can_spill(v_->lane) != 0; }
    // Would a message of `bytes` fit if appended now?
    bool fits(uint64_t bytes) const { return count() < maxMessages() && this->bytes() + bytes <= maxBytes(); }

private:
    const sf_lane_view* v_;
};

struct Verdict {
    sf_verdict verdict = SF_VERDICT_ACCEPT;
    uint32_t dropped = 0;
    const char* reason = nullptr;  // static storage
    static Verdict accept(uint32_t dropped = 0, const char* reason = nullptr) { return {SF_VERDICT_ACCEPT, dropped, reason}; }
    static Verdict reject(const char* reason) { return {SF_VERDICT_REJECT, 0, reason}; }
    static Verdict coalesced(const char* reason = "coalesced by key") { return {SF_VERDICT_COALESCED, 0, reason}; }
    static Verdict spill(const char* reason = "spilled to disk") { return {SF_VERDICT_SPILL, 0, reason}; }
};

class OverflowPolicy {
public:
    virtual ~OverflowPolicy() = default;
    virtual Verdict onEnqueue(Lane& lane, const Message& incoming, bool fits) = 0;
    // Override with SF_POLICY_ON_EVERY to be consulted on every enqueue.
    static constexpr uint32_t when = SF_POLICY_ON_OVERFLOW;
};

// ------------------------------------------------------------------ token validator

struct TokenRequest {
    std::string_view token, ns, topic, action, remoteAddr;
};

struct TokenResult {
    bool accepted = false;
    std::string principal;
    std::string reason;
    int64_t expiresAtMs = 0;
    static TokenResult accept(std::string principal, int64_t expiresAtMs = 0) {
        TokenResult r;
        r.accepted = true;
        r.principal = std::move(principal);
        r.expiresAtMs = expiresAtMs;
        return r;
    }
    static TokenResult reject(std::string reason) {
        TokenResult r;
        r.reason = std::move(reason);
        return r;
    }
};

class TokenValidator {
public:
    virtual ~TokenValidator() = default;
    virtual TokenResult validate(const TokenRequest& request) = 0;
    static constexpr uint32_t flags = 0;  // SF_VALIDATOR_MAY_BLOCK if validate may block
};

// Compare secrets without leaking where they differ through timing.
inline bool constantTimeEquals(std::string_view a, std::string_view b) {
    size_t n = a.size() > b.size() ? a.size() : b.size();
    unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
    for (size_t i = 0; i < n; ++i) {
        unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

// ------------------------------------------------------------------ metrics sink

// One sample of a snapshot, borrowed for the duration of flush/render.
class Sample {
public:
    explicit Sample(const sf_metric_sample& s) : s_(&s) {}
    std::string_view name() const { return view(s_->name); }
    std::string_view help() const { return view(s_->help); }
    bool isGauge() const { return s_->type == SF_METRIC_GAUGE; }
    double value() const { return s_->value; }
    size_t labelCount() const { return s_->labels ? s_->label_count : 0; }
    std::string_view labelName(size_t i) const { return view(element(s_->labels, i).name); }
    std::string_view labelValue(size_t i) const { return view(element(s_->labels, i).value); }
    const sf_metric_sample& raw() const { return *s_; }

private:
    const sf_metric_sample* s_;
};

// The snapshot handed to flush/render.
class Samples {
public:
    Samples(const sf_metric_sample* s, size_t n) : s_(s), n_(s ? n : 0) {}
    size_t size() const { return n_; }
    Sample operator[](size_t i) const { return Sample(element(s_, i)); }

private:
    const sf_metric_sample* s_;
    size_t n_;
};

class MetricsSink {
public:
    virtual ~MetricsSink() = default;
    // Push: called every flushIntervalMs with the whole snapshot.
    virtual void flush(const Samples& /*samples*/) {}
    // Pull: return the exposition text; set contentType to a static string.
    virtual bool render(const Samples& /*samples*/, std::string& /*out*/, const char*& /*contentType*/) {
        return false;
    }
    static constexpr uint32_t flushIntervalMs = 0;
    static constexpr bool renders = false;  // true if render() is implemented

    // Per-instance interval (e.g. from an option), overriding the static flushIntervalMs.
    // Call from the constructor.
    void setFlushIntervalMs(uint32_t ms) { intervalOverride_ = ms; hasOverride_ = true; }
    bool hasFlushIntervalOverride() const { return hasOverride_; }
    uint32_t flushIntervalOverride() const { return intervalOverride_; }

private:
    uint32_t intervalOverride_ = 0;
    bool hasOverride_ = false;
};

// ------------------------------------------------------------------ storage backend

struct LaneKey {
    std::string server, ns, client, topic;
    static LaneKey from(const sf_lane_key* k) {
        return LaneKey{std::string(view(k->server)), std::string(view(k->ns)), std::string(view(k->client)),
                       std::string(view(k->topic))};
    }
    bool operator<(const LaneKey& o) const {
        return std::tie(server, ns, client, topic) < std::tie(o.server, o.ns, o.client, o.topic);
    }
    bool operator==(const LaneKey& o) const {
        return server == o.server && ns == o.ns && client == o.client && topic == o.topic;
    }
};

struct Record {
    std::string data, event, messageId, key;
    uint32_t retryCount = 0;
    uint64_t bytes = 0;
    static Record from(const sf_record* r) {
        Record out;
        out.data.assign(view(r->data));
        out.event.assign(view(r->event));
        out.messageId.assign(view(r->message_id));
        out.key.assign(view(r->key));
        out.retryCount = r->retry_count;
        out.bytes = r->bytes;
        return out;
    }
    sf_record raw() const {
        sf_record r{};
        r.struct_size = sizeof r;
        r.retry_count = retryCount;
        r.data = str(data);
        r.event = str(event);
        r.message_id = str(messageId);
        r.bytes = bytes;
        r.key = str(key);
        return r;
    }
};

// The callback of one storage operation; call it exactly once, from any thread.
class Completion {
public:
    Completion() = default;
    Completion(sf_storage_done fn, void* cookie) : fn_(fn), cookie_(cookie) {}
    void ok() const { if (fn_) fn_(cookie_, SF_OK, nullptr, 0, nullptr); }
    void fail(int status, const std::string& error) const { if (fn_) fn_(cookie_, status, nullptr, 0, error.c_str()); }
    void records(const std::vector<Record>& rs) const {
        std::vector<sf_record> raw;
        raw.reserve(rs.size());
        for (auto& r : rs) raw.push_back(r.raw());
        if (fn_) fn_(cookie_, SF_OK, raw.data(), raw.size(), nullptr);
    }

private:
    sf_storage_done fn_ = nullptr;
    void* cookie_ = nullptr;
};

struct Usage {
    uint64_t records = 0, bytes = 0;
};

class StorageBackend {
public:
    virtual ~StorageBackend() = default;
    // Each returns true if accepted (the completion will be called), false if refused.
    virtual bool append(const LaneKey& lane, Record record, Completion done) = 0;
    virtual bool readOldest(const LaneKey& lane, uint32_t max, Completion done) = 0;
    virtual bool removeOldest(const LaneKey& lane, uint32_t n, Completion done) = 0;
    virtual bool clear(const LaneKey& lane, Completion done) = 0;
    virtual Usage usage(const LaneKey* lane) = 0;  // nullptr = whole instance
};

// ------------------------------------------------------------------ glue (not for authors)
namespace detail {

inline void setError(sf_error* err, const char* msg) {
    if (!err || !err->message || err->capacity == 0) return;
    std::snprintf(err->message, err->capacity, "%s", msg);
}

template <class Base, class Impl>
struct Instance {
    Host host;
    Impl impl;
    Instance(const sf_host_api* h, const Options& o) : host(h), impl(host, o) {}
};

template <class Impl>
int init(const sf_host_api* host, const sf_options* options, void** instance, sf_error* err) {
    try {
        Options o(options);
        *instance = new Instance<void, Impl>(host, o);
        return SF_OK;
    } catch (const std::exception& e) {
        setError(err, e.what());
    } catch (...) {
        setError(err, "unknown exception in plugin init");
    }
    return SF_ERR;
}

template <class Impl>
void destroy(void* instance) {
    delete static_cast<Instance<void, Impl>*>(instance);
}

template <class Impl>
Impl& self(void* instance) {
    return static_cast<Instance<void, Impl>*>(instance)->impl;
}

template <class Impl>
int policyOnEnqueue(void* inst, const sf_lane_view* lane, const sf_message_view* in, int fits, sf_policy_result* out) {
    try {
        Lane l(lane);
        Verdict v = self<Impl>(inst).onEnqueue(l, Message::from(*in), fits != 0);
        out->verdict = v.verdict;
        out->dropped = v.dropped;
        out->reason = v.reason;
        return SF_OK;
    } catch (...) {
        return SF_ERR;
    }
}

template <class Impl>
int validatorValidate(void* inst, const sf_token_request* rq, sf_token_result* out) {
    try {
        TokenRequest r{view(rq->token), view(rq->ns), view(rq->topic), view(rq->action), view(rq->remote_addr)};
        TokenResult res = self<Impl>(inst).validate(r);
        out->accepted = res.accepted ? 1 : 0;
        out->expires_at_ms = res.expiresAtMs;
        writeText(out->principal, res.principal);
        writeText(out->reason, res.reason);
        return SF_OK;
    } catch (const std::exception& e) {
        out->accepted = 0;
        writeText(out->reason, std::string("validator error: ") + e.what());
        return SF_ERR;
    } catch (...) {
        out->accepted = 0;
        writeText(out->reason, "validator error");
        return SF_ERR;
    }
}

template <class Impl>
int sinkFlush(void* inst, const sf_metric_sample* s, size_t n) {
    try {
        self<Impl>(inst).flush(Samples(s, n));
        return SF_OK;
    } catch (...) {
        return SF_ERR;
    }
}

template <class Impl>
int sinkRender(void* inst, const sf_metric_sample* s, size_t n, sf_writer* w, const char** ct) {
    try {
        std::string out;
        const char* type = "text/plain; charset=utf-8";
        if (!self<Impl>(inst).render(Samples(s, n), out, type)) return SF_ERR_NOT_SUPPORTED;
        writeText(w, out);
        if (ct) *ct = type;
        return SF_OK;
    } catch (...) {
        return SF_ERR;
    }
}

template <class Impl>
uint32_t sinkFlushInterval(void* inst) {
    const Impl& s = self<Impl>(inst);
    return s.hasFlushIntervalOverride() ? s.flushIntervalOverride() : Impl::flushIntervalMs;
}

template <class Impl>
struct StorageGlue {
    static int append(void* i, const sf_lane_key* k, const sf_record* r, sf_storage_done d, void* c) {
        try { return self<Impl>(i).append(LaneKey::from(k), Record::from(r), Completion(d, c)) ? SF_OK : SF_ERR; }
        catch (...) { return SF_ERR; }
    }
    static int readOldest(void* i, const sf_lane_key* k, uint32_t max, sf_storage_done d, void* c) {
        try { return self<Impl>(i).readOldest(LaneKey::from(k), max, Completion(d, c)) ? SF_OK : SF_ERR; }
        catch (...) { return SF_ERR; }
    }
    static int removeOldest(void* i, const sf_lane_key* k, uint32_t n, sf_storage_done d, void* c) {
        try { return self<Impl>(i).removeOldest(LaneKey::from(k), n, Completion(d, c)) ? SF_OK : SF_ERR; }
        catch (...) { return SF_ERR; }
    }
    static int clear(void* i, const sf_lane_key* k, sf_storage_done d, void* c) {
        try { return self<Impl>(i).clear(LaneKey::from(k), Completion(d, c)) ? SF_OK : SF_ERR; }
        catch (...) { return SF_ERR; }
    }
    static int usage(void* i, const sf_lane_key* k, sf_storage_usage* out) {
        try {
            Usage u;
            if (k) {
                LaneKey key = LaneKey::from(k);
                u = self<Impl>(i).usage(&key);
            } else {
                u = self<Impl>(i).usage(nullptr);
            }
            out->records = u.records;
            out->bytes = u.bytes;
            return SF_OK;
        } catch (...) { return SF_ERR; }
    }
};

template <class Impl>
const sf_plugin_descriptor* describe(uint32_t kind, const void* vtable, const char* name, const char* version,
                                     const char* description) {
    static sf_plugin_descriptor d = [&] {
        sf_plugin_descriptor x{};
        x.struct_size = sizeof x;
        x.abi_version = SF_ABI_VERSION;
        x.abi_minor = SF_ABI_MINOR;
        x.kind = kind;
        x.name = name;
        x.version = version;
        x.description = description;
        x.init = &init<Impl>;
        x.destroy = &destroy<Impl>;
        x.vtable = vtable;
        return x;
    }();
    return &d;
}

template <class Impl>
const sf_plugin_descriptor* overflowPolicy(const char* n, const char* v, const char* d) {
    static const sf_overflow_policy_vtable vt = {sizeof(sf_overflow_policy_vtable), Impl::when, &policyOnEnqueue<Impl>, {}};
    return describe<Impl>(SF_KIND_OVERFLOW_POLICY, &vt, n, v, d);
}
template <class Impl>
const sf_plugin_descriptor* tokenValidator(const char* n, const char* v, const char* d) {
    static const sf_token_validator_vtable vt = {sizeof(sf_token_validator_vtable), Impl::flags, &validatorValidate<Impl>, {}};
    return describe<Impl>(SF_KIND_TOKEN_VALIDATOR, &vt, n, v, d);
}
template <class Impl>
const sf_plugin_descriptor* metricsSink(const char* n, const char* v, const char* d) {
    static const sf_metrics_sink_vtable vt = {sizeof(sf_metrics_sink_vtable), Impl::flushIntervalMs, &sinkFlush<Impl>,
                                              Impl::renders ? &sinkRender<Impl> : nullptr, &sinkFlushInterval<Impl>, {}};
    return describe<Impl>(SF_KIND_METRICS_SINK, &vt, n, v, d);
}
template <class Impl>
const sf_plugin_descriptor* storageBackend(const char* n, const char* v, const char* d) {
    using G = StorageGlue<Impl>;
    static const sf_storage_backend_vtable vt = {sizeof(sf_storage_backend_vtable), 0, &G::append, &G::readOldest,
                                                 &G::removeOldest, &G::clear, &G::usage, {}};
    return describe<Impl>(SF_KIND_STORAGE_BACKEND, &vt, n, v, d);
}

}  // namespace detail
}  // namespace streamfence

// One of these per plugin .so. The class needs a constructor (const Host&, const Options&).
#define STREAMFENCE_PLUGIN_ENTRY_(FACTORY, CLASS, NAME, VERSION, DESC)                                     \
    extern "C" SF_PLUGIN_EXPORT const sf_plugin_descriptor* streamfence_plugin_entry(const uint32_t*, uint32_t) { \
        return ::streamfence::detail::FACTORY<CLASS>(NAME, VERSION, DESC);                                  \
    }
#define STREAMFENCE_OVERFLOW_POLICY(CLASS, NAME, VERSION, DESC) STREAMFENCE_PLUGIN_ENTRY_(overflowPolicy, CLASS, NAME, VERSION, DESC)
#define STREAMFENCE_TOKEN_VALIDATOR(CLASS, NAME, VERSION, DESC) STREAMFENCE_PLUGIN_ENTRY_(tokenValidator, CLASS, NAME, VERSION, DESC)
#define STREAMFENCE_METRICS_SINK(CLASS, NAME, VERSION, DESC) STREAMFENCE_PLUGIN_ENTRY_(metricsSink, CLASS, NAME, VERSION, DESC)
#define STREAMFENCE_STORAGE_BACKEND(CLASS, NAME, VERSION, DESC) STREAMFENCE_PLUGIN_ENTRY_(storageBackend, CLASS, NAME, VERSION, DESC)
