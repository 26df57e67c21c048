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

// Stands in for a token connection from before its upgrade answer is sent until its session
// is registered: the client may write the moment it sees the 101, and a notification for
// that write must not fall in the gap. Holds what arrives (bounded), then hands it over.
class EarlySubscriber : public Subscriber {
public:
    static constexpr std::size_t kMaxHeldBytes = 8u << 20;
    explicit EarlySubscriber(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}
    void deliver(const std::string& frame) override;
    const std::vector<std::string>& patterns() const override { return patterns_; }
    // Delivers what was held to s, in order, and forwards to s from now on.
    void attach(const std::shared_ptr<Subscriber>& s);

private:
    std::mutex mu_;
    std::vector<std::string> patterns_;
    std::vector<std::string> held_;
    std::size_t heldBytes_ = 0;
    std::shared_ptr<Subscriber> target_;
};

class SubscriptionHub {
public:
    void add(const std::shared_ptr<Subscriber>& s);
    void remove(const Subscriber* s);
    // Puts now where old was (an EarlySubscriber's session taking its place).
    void replace(const Subscriber* old, const std::shared_ptr<Subscriber>& now);
    // Sends {type:"notification",key,value|null,timestamp} to every matching subscriber.
    void notify(const std::string& key, const std::string* value);
    std::size_t count() const;

private:
    mutable std::mutex mu_;
    std::vector<std::shared_ptr<Subscriber>> subs_;
};

}  // namespace hpkv
