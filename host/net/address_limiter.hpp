// The per-address table behind the accept-time limits (conf/README.md "limits") and the
// control API's request rate: open connections per address and overall, and a token bucket
// of new connections (or requests) per address. Bounded memory: an address with open
// connections is remembered while they last (their number is capped by maxConnections); one
// without is kept in a least-recently-seen list of at most `maxIdleEntries` and the oldest is
// forgotten, so a spray of source addresses cannot grow the table. IPv6 addresses count per
// /64 (what one host is usually given). Thread-safe (one mutex: the accept loop, and the
// connections' loops when they close).
#pragma once
#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sf::net {

class AddressLimiter {
public:
    struct Limits {
        uint64_t maxConnections = 0;       // all addresses together; 0 = no cap
        uint64_t maxPerAddress = 0;        // 0 = no cap
        double ratePerSecond = 0;          // new connections (or requests) per address; 0 = no cap
        double burst = 0;                  // bucket size (>= 1 when ratePerSecond > 0)
        size_t maxIdleEntries = 65536;     // addresses without open connections remembered
        bool exemptLoopback = false;       // per-address caps skip loopback (global cap still applies)
    };
    enum class Verdict { Admitted, TooMany, TooManyFromAddress, TooFast };

    // An address as the table keys it (family + IPv4, or the IPv6 /64).
    struct Key {
        std::string bytes;
        bool loopback = false;
    };
    static Key keyOf(const void* sockaddrPtr);

    explicit AddressLimiter(Limits l) : lim_(l) {}

    // A new connection from `k`: Admitted counts it open (release() it when it closes).
    Verdict admit(const Key& k, uint64_t nowMs);
    void release(const Key& k);
    // One request against the address's bucket only (the control API): false when empty,
    // with the wait until the next token in retryAfterMs.
    bool takeToken(const Key& k, uint64_t nowMs, uint64_t& retryAfterMs);

    size_t entries() const;          // addresses in the table
    uint64_t open() const { return open_.load(std::memory_order_relaxed); }
    uint64_t refused(Verdict v) const { return refused_[static_cast<int>(v)].load(std::memory_order_relaxed); }
    const Limits& limits() const { return lim_; }

    static const char* reason(Verdict v);  // "max_connections", ... (metric label, log field)

private:
    struct Entry {
        uint64_t open = 0;
        double tokens = 0;
        uint64_t lastMs = 0;
        bool idle = false;                                  // in idle_ (open == 0)
        std::list<const std::string*>::iterator idleIt;
    };
    Entry& entry(const Key& k, uint64_t nowMs);  // found or created, bucket refilled to now
    void markIdle(Entry& e, const std::string& key);
    void markBusy(Entry& e);
    void evict();

    const Limits lim_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> table_;
    std::list<const std::string*> idle_;  // front = most recently seen; keys point into table_
    std::atomic<uint64_t> open_{0};
    std::atomic<uint64_t> refused_[4] = {};
};

}  // namespace sf::net
