// API keys and subscription tokens.
//
// Tokens are HS256 JWTs (HPKV's look like JWTs too) signed with a server
// secret; with --data the secret is kept in DIR/token-secret so tokens stay
// valid across restarts, like a client would expect from the real service.
// Claims: sub (API key id), exp (ms), sp (subscribe patterns), ap (access
// pattern, optional). They are base64url, so they survive the official
// client's unencoded `?token=` query.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hpkv {

// Identifies an API key without revealing it (first 16 hex chars of SHA-256).
std::string apiKeyId(const std::string& apiKey);

class ApiKeys {
public:
    explicit ApiKeys(const std::vector<std::string>& keys);
    // Returns the key id for a valid key.
    std::optional<std::string> check(const std::string& key) const;
    bool hasId(const std::string& id) const;

private:
    std::map<std::string, std::string> keyToId_;
};

struct TokenClaims {
    std::string keyId;
    std::int64_t expiresMs = 0;
    std::vector<std::string> subscribePatterns;
    std::optional<std::string> accessPattern;
};

class TokenService {
public:
    TokenService(std::string secret, std::chrono::seconds ttl) : secret_(std::move(secret)), ttl_(ttl) {}

    // Loads DIR/token-secret or creates it; a fresh random secret without DIR.
    static std::string loadOrCreateSecret(const std::string& dataDir);

    std::string issue(const std::string& keyId, const std::vector<std::string>& patterns,
                      const std::optional<std::string>& accessPattern) const;
    // Signature, expiry and claim shape; the caller checks the key id is still valid.
    std::optional<TokenClaims> verify(const std::string& token) const;

private:
    std::string secret_;
    std::chrono::seconds ttl_;
};

// Subscription pattern: exact key, or a glob where '*' matches any run of bytes.
bool globMatch(const std::string& pattern, const std::string& key);

}  // namespace hpkv
