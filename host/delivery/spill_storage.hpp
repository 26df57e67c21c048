// A storage-backend plugin instance (docs/plugin-abi.md) as lanes use it. Every call is
// asynchronous; the completion is posted back to the event loop the caller names, so lane
// code only ever runs on its own loop. The loop must outlive outstanding calls.
#pragma once
#include <streamfence/plugin.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/event_loop.hpp"
#include "plugins/registry.hpp"

namespace sf::delivery {

struct SpillKey {
    std::string server, ns, client, topic;
};

struct SpillRecord {
    std::string data;       // payload JSON
    std::string event;      // event name (the topic)
    std::string messageId;  // "" never happens here: we always keep the id
    std::string key;        // coalesce key
    uint64_t bytes = 0;
    uint32_t retryCount = 0;
};

class SpillStorage {
public:
    // status: SF_OK or SF_ERR_*; records only for readOldest.
    using Done = std::function<void(int status, std::vector<SpillRecord> records, std::string error)>;

    explicit SpillStorage(plugins::PluginInstancePtr inst);
    SpillStorage(const sf_storage_backend_vtable* vt, void* instance, std::string name,
                 std::shared_ptr<void> keepAlive = nullptr);

    const std::string& name() const { return name_; }

    // Each returns SF_OK when accepted (done will run once, on `loop`), else the plugin's
    // refusal code (done never runs).
    int append(net::EventLoop& loop, const SpillKey& k, const SpillRecord& r, Done done) const;
    int readOldest(net::EventLoop& loop, const SpillKey& k, uint32_t max, Done done) const;
    int removeOldest(net::EventLoop& loop, const SpillKey& k, uint32_t n, Done done) const;
    int clear(net::EventLoop& loop, const SpillKey& k, Done done) const;

private:
    const sf_storage_backend_vtable* vt_;
    void* instance_;
    std::string name_;
    std::shared_ptr<void> keepAlive_;
};

}  // namespace sf::delivery
