// A token-validator plugin instance as the auth gate uses it, and where tokens come from.
#pragma once
#include <streamfence/plugin.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "plugins/registry.hpp"
#include "protocol/sio_api.hpp"

namespace sf::delivery {

// What the host keeps of a validator's principal or reason (plugin.h says 64 KiB).
constexpr size_t kMaxTokenTextBytes = 64 * 1024;

struct TokenCheck {
    bool accepted = false;
    int64_t expiresAtMs = 0;  // wall clock, 0 = never
    std::string principal;
    std::string reason;       // why rejected
};

class TokenValidator {
public:
    explicit TokenValidator(plugins::PluginInstancePtr inst);
    TokenValidator(const sf_token_validator_vtable* vt, void* instance, std::string name,
                   std::shared_ptr<void> keepAlive = nullptr);

    const std::string& name() const { return name_; }
    bool mayBlock() const { return (vt_->flags & SF_VALIDATOR_MAY_BLOCK) != 0; }
    // Thread-safe per the ABI; blocks when mayBlock().
    TokenCheck validate(std::string_view token, std::string_view ns, std::string_view topic, std::string_view action,
                        std::string_view remote) const;

private:
    const sf_token_validator_vtable* vt_;
    void* instance_;
    std::string name_;
    std::shared_ptr<void> keepAlive_;
};

// The connect-time token: CONNECT auth {token}, else `Authorization: Bearer <t>`, else the
// `token` query parameter. "" when none (blank counts as none).
std::string connectToken(const sio::Socket& s);
// A subscribe/publish payload's `token` (string, non-blank), else "".
std::string payloadToken(const json::Value& payload);

uint64_t wallClockMs();

}  // namespace sf::delivery
