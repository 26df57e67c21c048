#include "jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <streamfence/plugin.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "base64url.hpp"
#include "json_lite.hpp"

namespace jwks {

namespace {

const std::string* str(const jsonlite::Value& o, const char* k) {
    const jsonlite::Value* v = o.get(k);
    return v && v->type == jsonlite::Value::String ? &v->s : nullptr;
}

}  // namespace

Pkey rsaFromJwk(const std::string& nB64, const std::string& eB64, std::string& err) {
    std::string n, e;
    if (!jwtb64::decode(nB64, n, jwtb64::Mode::Lenient) || n.empty() || !jwtb64::decode(eB64, e, jwtb64::Mode::Lenient) || e.empty()) return (err = "bad base64url in n or e"), nullptr;
    if (n.size() < 256) return (err = "RSA modulus shorter than 2048 bits"), nullptr;
    if (n.size() > 2048) return (err = "RSA modulus longer than 16384 bits"), nullptr;  // bounds verify cost
    std::unique_ptr<BIGNUM, void (*)(BIGNUM*)> bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr), BN_free);
    std::unique_ptr<BIGNUM, void (*)(BIGNUM*)> be(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr), BN_free);
    std::unique_ptr<OSSL_PARAM_BLD, void (*)(OSSL_PARAM_BLD*)> bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
    if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get()))
        return (err = "out of memory"), nullptr;
    std::unique_ptr<OSSL_PARAM, void (*)(OSSL_PARAM*)> params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
    std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return (err = "not a valid RSA public key"), nullptr;
    return Pkey(raw);
}

bool parse(const std::string& json, KeySet& out, std::string& err) {
    out.clear();
    jsonlite::Value doc;
    if (!jsonlite::parse(json, doc, err)) return (err = "not JSON: " + err), false;
    const jsonlite::Value* keys = doc.type == jsonlite::Value::Object ? doc.get("keys") : nullptr;
    if (!keys || keys->type != jsonlite::Value::Array) return (err = "not a JWKS (no \"keys\" array)"), false;
    std::string skipped;
    for (const auto& k : keys->a) {
        if (k.type != jsonlite::Value::Object) continue;
        const std::string* kty = str(k, "kty");
        const std::string* use = str(k, "use");
        const std::string* alg = str(k, "alg");
        const std::string* n = str(k, "n");
        const std::string* e = str(k, "e");
        const std::string* kid = str(k, "kid");
        if (!kty || *kty != "RSA" || (use && *use != "sig") || (alg && *alg != "RS256") || !n || !e) continue;
        std::string why;
        Pkey p = rsaFromJwk(*n, *e, why);
        if (!p) {
            skipped += (skipped.empty() ? "" : "; ") + std::string("kid ") + (kid ? *kid : "(none)") + ": " + why;
            continue;
        }
        out.push_back(Key{kid ? *kid : std::string(), std::move(p)});
    }
    if (out.empty()) return (err = "no RS256 signing key in the set" + (skipped.empty() ? "" : " (" + skipped + ")")), false;
    return true;
}

Fetcher::Fetcher(jwthttp::Url url, std::string urlText, int64_t refreshMs, int timeoutMs, Log log)
    : url_(std::move(url)),
      urlText_(std::move(urlText)),
      refreshMs_(refreshMs),
      timeoutMs_(timeoutMs),
      minRefetchMs_(std::min<int64_t>(refreshMs, 5000)),
      log_(std::move(log)) {
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd_ < 0) throw std::runtime_error("eventfd failed");
    thread_ = std::thread([this] { run(); });
}

Fetcher::~Fetcher() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    uint64_t one = 1;
    (void)!::write(wakeFd_, &one, sizeof one);  // interrupts a fetch in progress
    if (thread_.joinable()) thread_.join();
    ::close(wakeFd_);
}

std::shared_ptr<const KeySet> Fetcher::keys() const {
    std::lock_guard<std::mutex> lk(mu_);
    return keys_;
}

void Fetcher::refreshSoon() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        soon_ = true;
    }
    cv_.notify_all();
}

bool Fetcher::fetchOnce() {
    jwthttp::Response r;
    std::string err;
    if (!jwthttp::get(url_, timeoutMs_, wakeFd_, 1u << 20, r, err)) {
        if (err != "cancelled") log_(SF_LOG_WARN, "jwks_fetch_failed", urlText_ + ": " + err);
        return false;
    }
    if (r.status != 200) {
        log_(SF_LOG_WARN, "jwks_fetch_failed", urlText_ + ": HTTP status " + std::to_string(r.status));
        return false;
    }
    auto set = std::make_shared<KeySet>();
    if (!parse(r.body, *set, err)) {
        log_(SF_LOG_WARN, "jwks_fetch_failed", urlText_ + ": " + err);
        return false;
    }
    std::string kids;
    for (auto& k : *set) kids += (kids.empty() ? "" : ",") + (k.kid.empty() ? std::string("-") : k.kid);
    {
        std::lock_guard<std::mutex> lk(mu_);
        keys_ = std::move(set);
    }
    log_(SF_LOG_INFO, "jwks_loaded", urlText_ + ": kids " + kids);
    return true;
}

void Fetcher::run() {
    using Clock = std::chrono::steady_clock;
    // After a failure retry sooner than the refresh period (a server not up yet), with backoff.
    int64_t retryMs = std::min<int64_t>(refreshMs_, 1000);
    for (;;) {
        bool ok = fetchOnce();
        auto fetchedAt = Clock::now();
        std::unique_lock<std::mutex> lk(mu_);
        if (stop_) return;
        int64_t waitMs = ok ? refreshMs_ : retryMs;
        retryMs = ok ? std::min<int64_t>(refreshMs_, 1000) : std::min<int64_t>(refreshMs_, retryMs * 2);
        soon_ = false;
        auto due = fetchedAt + std::chrono::milliseconds(waitMs);
        auto earliest = fetchedAt + std::chrono::milliseconds(minRefetchMs_);
        // Sleep until due, or until an early refresh was asked for and minRefetchMs passed.
        while (!stop_) {
            if (Clock::now() >= due) break;
            if (soon_ && Clock::now() >= earliest) break;
            if (soon_) cv_.wait_until(lk, std::min(due, earliest));
            else cv_.wait_until(lk, due);
        }
        if (stop_) return;
    }
}

}  // namespace jwks
