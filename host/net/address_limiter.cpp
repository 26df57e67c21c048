#include "net/address_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <netinet/in.h>
#include <sys/socket.h>

namespace sf::net {

AddressLimiter::Key AddressLimiter::keyOf(const void* sa) {
    Key k;
    const int family = static_cast<const sockaddr*>(sa)->sa_family;
    if (family == AF_INET) {
        const auto* a = static_cast<const sockaddr_in*>(sa);
        const auto* b = reinterpret_cast<const unsigned char*>(&a->sin_addr);
        k.bytes.assign(1, '4');
        k.bytes.append(reinterpret_cast<const char*>(b), 4);
        k.loopback = b[0] == 127;
    } else if (family == AF_INET6) {
        const auto* a = static_cast<const sockaddr_in6*>(sa);
        const unsigned char* b = a->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        if (std::memcmp(b, mapped, 12) == 0) {  // ::ffff:a.b.c.d is that IPv4 address
            k.bytes.assign(1, '4');
            k.bytes.append(reinterpret_cast<const char*>(b + 12), 4);
            k.loopback = b[12] == 127;
        } else {
            k.bytes.assign(1, '6');
            k.bytes.append(reinterpret_cast<const char*>(b), 8);  // the /64
            k.loopback = std::memcmp(b, loop6, 16) == 0;
        }
    } else {
        k.bytes = "?";
    }
    return k;
}

const char* AddressLimiter::reason(Verdict v) {
    switch (v) {
        case Verdict::TooMany: return "max_connections";
        case Verdict::TooManyFromAddress: return "max_connections_per_address";
        case Verdict::TooFast: return "connection_rate";
        case Verdict::Admitted: break;
    }
    return "admitted";
}

AddressLimiter::Entry& AddressLimiter::entry(const Key& k, uint64_t nowMs) {
    auto [it, fresh] = table_.try_emplace(k.bytes);
    Entry& e = it->second;
    if (fresh) {
        e.tokens = lim_.burst;
        e.lastMs = nowMs;
        markIdle(e, it->first);  // until it holds a connection; may evict the oldest
    } else {
        if (lim_.ratePerSecond > 0 && nowMs > e.lastMs)
            e.tokens = std::min(lim_.burst, e.tokens + static_cast<double>(nowMs - e.lastMs) * lim_.ratePerSecond / 1000.0);
        e.lastMs = nowMs;
        if (e.idle) idle_.splice(idle_.begin(), idle_, e.idleIt);  // seen now
    }
    return e;
}

void AddressLimiter::markIdle(Entry& e, const std::string& key) {
    if (e.idle) return;
    idle_.push_front(&key);
    e.idleIt = idle_.begin();
    e.idle = true;
    evict();
}

void AddressLimiter::markBusy(Entry& e) {
    if (!e.idle) return;
    idle_.erase(e.idleIt);
    e.idle = false;
}

void AddressLimiter::evict() {
    // Only addresses without open connections are forgotten (the least recently seen): those
    // with some are bounded by maxConnections and must be, to release them correctly.
    while (idle_.size() > lim_.maxIdleEntries) {
        const std::string key = *idle_.back();
        idle_.pop_back();
        table_.erase(key);
    }
}

AddressLimiter::Verdict AddressLimiter::admit(const Key& k, uint64_t nowMs) {
    auto refuse = [this](Verdict v) {
        refused_[static_cast<int>(v)].fetch_add(1, std::memory_order_relaxed);
        return v;
    };
    std::lock_guard<std::mutex> lk(mu_);
    if (lim_.maxConnections > 0 && open_.load(std::memory_order_relaxed) >= lim_.maxConnections)
        return refuse(Verdict::TooMany);
    if (!(k.loopback && lim_.exemptLoopback) && (lim_.maxPerAddress > 0 || lim_.ratePerSecond > 0)) {
        Entry& e = entry(k, nowMs);
        if (lim_.maxPerAddress > 0 && e.open >= lim_.maxPerAddress) return refuse(Verdict::TooManyFromAddress);
        if (lim_.ratePerSecond > 0) {
            if (e.tokens < 1.0) return refuse(Verdict::TooFast);
            e.tokens -= 1.0;
        }
        ++e.open;
        markBusy(e);
    }
    open_.fetch_add(1, std::memory_order_relaxed);
    return Verdict::Admitted;
}

void AddressLimiter::release(const Key& k) {
    std::lock_guard<std::mutex> lk(mu_);
    open_.fetch_sub(1, std::memory_order_relaxed);
    auto it = table_.find(k.bytes);
    if (it == table_.end() || it->second.open == 0) return;  // exempt, or not tracked
    if (--it->second.open == 0) markIdle(it->second, it->first);
}

bool AddressLimiter::takeToken(const Key& k, uint64_t nowMs, uint64_t& retryAfterMs) {
    if (lim_.ratePerSecond <= 0 || (k.loopback && lim_.exemptLoopback)) return true;
    std::lock_guard<std::mutex> lk(mu_);
    Entry& e = entry(k, nowMs);
    if (e.tokens >= 1.0) {
        e.tokens -= 1.0;
        return true;
    }
    refused_[static_cast<int>(Verdict::TooFast)].fetch_add(1, std::memory_order_relaxed);
    retryAfterMs = static_cast<uint64_t>(std::ceil((1.0 - e.tokens) * 1000.0 / lim_.ratePerSecond));
    return false;
}

size_t AddressLimiter::entries() const {
    std::lock_guard<std::mutex> lk(mu_);
    return table_.size();
}

}  // namespace sf::net
