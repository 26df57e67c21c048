#include "delivery/validator_calls.hpp"

#include "common/log.hpp"

namespace sf::delivery {

namespace {

// One call, touched only on its loop: the first of answer and timer settles it.
struct Pending {
    std::function<void(TokenCheck)> cb;
    net::TimerId timer = 0;
    bool settled = false;
    void settle(TokenCheck r) {
        settled = true;
        auto f = std::move(cb);
        cb = nullptr;  // what it holds is released here, on the loop
        f(std::move(r));
    }
};

}  // namespace

ValidatorCalls::ValidatorCalls(const TokenValidator& v, uint64_t timeoutMs, size_t threads, size_t maxThreads)
    : validator_(std::make_shared<const TokenValidator>(v)),
      timeoutMs_(timeoutMs ? timeoutMs : 1),
      gate_(std::make_shared<Gate>()),
      pool_(threads, maxThreads) {}

ValidatorCalls::~ValidatorCalls() {
    std::lock_guard<std::mutex> lk(gate_->mu);
    gate_->open = false;
}

void ValidatorCalls::validate(net::EventLoop& loop, std::string token, std::string ns, std::string topic,
                              std::string action, std::string remote, std::function<void(TokenCheck)> cb) {
    auto p = std::make_shared<Pending>();
    p->cb = std::move(cb);
    const std::string validator = validator_->name();
    p->timer = loop.addTimer(timeoutMs_, [p, gate = gate_, validator, ns, action, remote, ms = timeoutMs_] {
        p->timer = 0;
        if (p->settled) return;
        const uint64_t n = gate->timeouts.fetch_add(1, std::memory_order_relaxed) + 1;
        log::warn("auth_validate_timeout", {{"validator", validator}, {"namespace", ns}, {"action", action}, {"remote", remote},
                                            {"timeout_ms", std::to_string(ms)}, {"count", std::to_string(n)}});
        p->settle(TokenCheck{false, 0, "", kValidationTimedOut});
    });
    pool_.submit([v = validator_, gate = gate_, &loop, p, token = std::move(token), ns = std::move(ns),
                  topic = std::move(topic), action = std::move(action), remote = std::move(remote)]() mutable {
        TokenCheck r = v->validate(token, ns, topic, action, remote);
        std::lock_guard<std::mutex> lk(gate->mu);
        if (!gate->open) return;
        loop.post([p, r = std::move(r), &loop]() mutable {
            if (p->settled) return;  // timed out meanwhile: refused already
            if (p->timer) loop.cancelTimer(p->timer);
            p->timer = 0;
            p->settle(std::move(r));
        });
    });
}

}  // namespace sf::delivery
