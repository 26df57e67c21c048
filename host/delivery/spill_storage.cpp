#include "delivery/spill_storage.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "delivery/spill_inflight.hpp"

namespace sf::delivery {

namespace spill_inflight {
namespace {
std::mutex mu;
std::condition_variable idle;
uint64_t count = 0;
}  // namespace

void begin() {
    std::lock_guard<std::mutex> lk(mu);
    ++count;
}

void end() {
    std::lock_guard<std::mutex> lk(mu);
    if (--count == 0) idle.notify_all();
}

bool waitIdle(uint64_t ms) {
    std::unique_lock<std::mutex> lk(mu);
    return idle.wait_for(lk, std::chrono::milliseconds(ms), [] { return count == 0; });
}
}  // namespace spill_inflight

namespace {

struct Op {
    net::EventLoop* loop;
    SpillStorage::Done done;
};

std::string_view sv(sf_str s) { return std::string_view(s.ptr ? s.ptr : "", s.len); }

// The ABI 2.0 fields of sf_record the trampoline reads (key is the last of them).
constexpr size_t kRecordNeed = offsetof(sf_record, key) + sizeof(sf_str);

// Runs on any plugin thread: copy what was borrowed, then hop to the lane's loop.
void trampoline(void* cookie, int status, const sf_record* records, size_t count, const char* error) {
    Op* op = static_cast<Op*>(cookie);
    std::string err = error ? error : "";
    // Walked by the plugin's element size (plugin.h: arrays of structs), which a plugin built
    // with a later minor may have grown; one too small to hold the fields read here is an error.
    const size_t stride = records && count ? records[0].struct_size : 0;
    if (count && stride < kRecordNeed) {
        if (status == SF_OK) status = SF_ERR;
        err = "storage plugin returned records of struct_size " + std::to_string(stride) + ", need at least " +
              std::to_string(kRecordNeed);
        count = 0;
    }
    std::vector<SpillRecord> recs;
    recs.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        const sf_record& r = *reinterpret_cast<const sf_record*>(reinterpret_cast<const char*>(records) + i * stride);
        SpillRecord out;
        out.data.assign(sv(r.data));
        out.event.assign(sv(r.event));
        out.messageId.assign(sv(r.message_id));
        out.key.assign(sv(r.key));
        out.bytes = r.bytes;
        out.retryCount = r.retry_count;
        recs.push_back(std::move(out));
    }
    op->loop->post([op, status, recs = std::move(recs), err = std::move(err)]() mutable {
        std::unique_ptr<Op> own(op);
        own->done(status, std::move(recs), std::move(err));
    });
    spill_inflight::end();  // only now: the loop is not touched after this
}

struct KeyView {
    sf_lane_key k{};
    explicit KeyView(const SpillKey& s) {
        k.struct_size = sizeof k;
        k.server = sf_str{s.server.data(), s.server.size()};
        k.ns = sf_str{s.ns.data(), s.ns.size()};
        k.client = sf_str{s.client.data(), s.client.size()};
        k.topic = sf_str{s.topic.data(), s.topic.size()};
    }
};

template <class F>
int issue(net::EventLoop& loop, SpillStorage::Done done, F call) {
    auto* op = new Op{&loop, std::move(done)};
    spill_inflight::begin();
    int rc = call(op);
    if (rc != SF_OK) {  // refused: no callback will come
        delete op;
        spill_inflight::end();
    }
    return rc;
}

}  // namespace

SpillStorage::SpillStorage(plugins::PluginInstancePtr inst) : vt_(nullptr), instance_(nullptr), keepAlive_(inst) {
    if (!inst) throw plugins::PluginError("storage backend: no plugin instance");
    if (inst->descriptor().kind != SF_KIND_STORAGE_BACKEND)
        throw plugins::PluginError("plugin " + inst->name() + " is not a storage-backend plugin");
    vt_ = inst->vtable<sf_storage_backend_vtable>();
    if (!vt_ || !vt_->append || !vt_->read_oldest || !vt_->remove_oldest || !vt_->clear)
        throw plugins::PluginError("storage-backend plugin " + inst->name() + " lacks append/read_oldest/remove_oldest/clear");
    instance_ = inst->handle();
    name_ = inst->name();
}

SpillStorage::SpillStorage(const sf_storage_backend_vtable* vt, void* instance, std::string name,
                           std::shared_ptr<void> keepAlive)
    : vt_(vt), instance_(instance), name_(std::move(name)), keepAlive_(std::move(keepAlive)) {
    if (!vt_ || !vt_->append || !vt_->read_oldest || !vt_->remove_oldest || !vt_->clear)
        throw plugins::PluginError("storage backend " + name_ + " lacks append/read_oldest/remove_oldest/clear");
}

int SpillStorage::append(net::EventLoop& loop, const SpillKey& k, const SpillRecord& r, Done done) const {
    KeyView kv(k);
    sf_record rec{};
    rec.struct_size = sizeof rec;
    rec.retry_count = r.retryCount;
    rec.data = sf_str{r.data.data(), r.data.size()};
    rec.event = sf_str{r.event.data(), r.event.size()};
    rec.message_id = sf_str{r.messageId.data(), r.messageId.size()};
    rec.bytes = r.bytes;
    rec.key = sf_str{r.key.data(), r.key.size()};
    return issue(loop, std::move(done), [&](Op* op) { return vt_->append(instance_, &kv.k, &rec, &trampoline, op); });
}

int SpillStorage::readOldest(net::EventLoop& loop, const SpillKey& k, uint32_t max, Done done) const {
    KeyView kv(k);
    return issue(loop, std::move(done), [&](Op* op) { return vt_->read_oldest(instance_, &kv.k, max, &trampoline, op); });
}

int SpillStorage::removeOldest(net::EventLoop& loop, const SpillKey& k, uint32_t n, Done done) const {
    KeyView kv(k);
    return issue(loop, std::move(done), [&](Op* op) { return vt_->remove_oldest(instance_, &kv.k, n, &trampoline, op); });
}

int SpillStorage::clear(net::EventLoop& loop, const SpillKey& k, Done done) const {
    KeyView kv(k);
    return issue(loop, std::move(done), [&](Op* op) { return vt_->clear(instance_, &kv.k, &trampoline, op); });
}

}  // namespace sf::delivery
