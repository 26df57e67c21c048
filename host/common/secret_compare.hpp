// Comparing a presented secret (a bearer token) with the configured one without leaking, by
// timing, how much of it matched. The host's own helper: the SDK's plugin.hpp is for plugins
// (docs/plugin-abi.md).
#pragma once
#include <openssl/crypto.h>

#include <string_view>

namespace sf {

inline bool secretEquals(std::string_view presented, std::string_view expected) {
    return presented.size() == expected.size() && CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

}  // namespace sf
