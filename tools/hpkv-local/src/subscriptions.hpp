// Key-change notifications to token (subscription) connections.
// Subscriptions belong to the token, not to a message: a connection is
// registered with its token's patterns for as long as it is open.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hpkv {

class Subscriber {
public:
    virtual ~Subscriber() = default;
    // Must not block: called with the store lock held.
    virtual void deliver(const std::string& frame) = 0;
    virtual const std::vector<std::string>& patterns() const = 0;
};

class SubscriptionHub {
public:
    void add(const std::shared_ptr<Subscriber>& s);
    void remove(const Subscriber* s);
    // Sends {type:"notification",key,value|null,timestamp} to every matching subscriber.
    void notify(const std::string& key, const std::string* value);
    std::size_t count() const;

private:
    mutable std::mutex mu_;
    std::vector<std::shared_ptr<Subscriber>> subs_;
};

}  // namespace hpkv
