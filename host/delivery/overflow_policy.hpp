// An overflow-policy plugin instance as a lane uses it: the vtable, the instance handle,
// and whatever keeps the .so loaded. Tests can wrap a vtable of their own.
#pragma once
#include <streamfence/plugin.h>

#include <memory>
#include <string>

#include "plugins/registry.hpp"

namespace sf::delivery {

class OverflowPolicy {
public:
    // From the plugin registry (throws plugins::PluginError for a wrong kind or vtable).
    explicit OverflowPolicy(plugins::PluginInstancePtr inst);
    // From a raw vtable (tests, built-ins): keepAlive owns whatever instance points into.
    OverflowPolicy(const sf_overflow_policy_vtable* vt, void* instance, std::string name,
                   std::shared_ptr<void> keepAlive = nullptr);

    const std::string& name() const { return name_; }
    // Consulted on every enqueue, or only when the message does not fit.
    bool onEvery() const { return (vt_->when & SF_POLICY_ON_EVERY) != 0; }
    // The SF_POLICY_BATCH_* form the plugin declared (0: decided message by message).
    uint32_t batchForm() const { return vt_->when & SF_POLICY_BATCH_MASK; }
    int onEnqueue(const sf_lane_view* lane, const sf_message_view* incoming, bool fits, sf_policy_result* out) const;

private:
    const sf_overflow_policy_vtable* vt_;
    void* instance_;
    std::string name_;
    std::shared_ptr<void> keepAlive_;
};

}  // namespace sf::delivery
