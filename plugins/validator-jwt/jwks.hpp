// JSON Web Key Sets (RFC 7517): RSA signing keys parsed from a JWKS document, and the
// fetcher that keeps them current from jwksUrl on its own thread — validate() only reads
// the latest set, so token checks never wait on the network.
#pragma once
#include <openssl/evp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_get.hpp"

namespace jwks {

struct PkeyFree { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct Key {
    std::string kid;  // may be empty
    Pkey pkey;        // RSA public key
};
using KeySet = std::vector<Key>;

// The RSA keys of a JWKS document usable for RS256 ("kty":"RSA", "use" absent or "sig",
// "alg" absent or "RS256"); other keys are skipped. False with err when the document is not
// a JWKS or holds no usable key.
bool parse(const std::string& json, KeySet& out, std::string& err);

// The public key with modulus n and exponent e (base64url, RFC 7518 §6.3.1).
Pkey rsaFromJwk(const std::string& nB64, const std::string& eB64, std::string& err);

class Fetcher {
public:
    using Log = std::function<void(int level, const char* event, const std::string& msg)>;
    // Starts the thread; the first fetch begins at once.
    Fetcher(jwthttp::Url url, std::string urlText, int64_t refreshMs, int timeoutMs, Log log);
    ~Fetcher();  // cancels a fetch in progress and joins
    Fetcher(const Fetcher&) = delete;
    Fetcher& operator=(const Fetcher&) = delete;

    // The current keys (nullptr until the first successful fetch).
    std::shared_ptr<const KeySet> keys() const;
    // Ask for an early refresh (a token named a kid we do not have: keys may have rotated).
    // At most one per minRefetchMs, so bad tokens cannot turn into a flood of requests.
    void refreshSoon();

private:
    void run();
    bool fetchOnce();

    const jwthttp::Url url_;
    const std::string urlText_;
    const int64_t refreshMs_;
    const int timeoutMs_;
    const int64_t minRefetchMs_;
    Log log_;
    int wakeFd_ = -1;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, soon_ = false;
    std::shared_ptr<const KeySet> keys_;
    std::thread thread_;
};

}  // namespace jwks
