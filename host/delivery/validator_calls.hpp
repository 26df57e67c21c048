// Calls to a token validator that may block (SF_VALIDATOR_MAY_BLOCK), made on a WorkerPool
// with a deadline, so neither a slow nor a hung validator holds up a loop or the clients
// behind it. A call that has not answered within timeoutMs is refused on its loop
// ("Token validation timed out"), logged (event=auth_validate_timeout, with a running count)
// and counted; its late answer is dropped. The task keeps its own copy of the validator, which
// holds the plugin instance loaded, so a call still stuck at shutdown never runs unloaded code.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "delivery/token_validator.hpp"
#include "delivery/worker_pool.hpp"
#include "net/event_loop.hpp"

namespace sf::delivery {

inline constexpr const char* kValidationTimedOut = "Token validation timed out";

class ValidatorCalls {
public:
    ValidatorCalls(const TokenValidator& v, uint64_t timeoutMs, size_t threads, size_t maxThreads);
    ~ValidatorCalls();  // later answers are dropped, never posted to a loop

    // cb runs on `loop` exactly once: the validator's answer, or the timeout's refusal.
    void validate(net::EventLoop& loop, std::string token, std::string ns, std::string topic, std::string action,
                  std::string remote, std::function<void(TokenCheck)> cb);

    uint64_t timeouts() const { return gate_->timeouts.load(std::memory_order_relaxed); }

private:
    struct Gate {  // shared with the tasks and timers, which may outlive this
        std::mutex mu;
        bool open = true;  // answers cross to the loops only while open
        std::atomic<uint64_t> timeouts{0};
    };
    std::shared_ptr<const TokenValidator> validator_;
    uint64_t timeoutMs_;
    std::shared_ptr<Gate> gate_;
    WorkerPool pool_;
};

}  // namespace sf::delivery
