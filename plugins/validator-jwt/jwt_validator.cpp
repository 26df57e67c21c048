// "jwt": JSON Web Tokens signed with HS256 (option secret) or RS256 (a PEM public key or
// certificate in publicKeyPem / publicKeyPemPath, and/or the keys of a JWKS document at
// jwksUrl, refreshed every jwksRefreshMs on the plugin's own thread). Checks the algorithm
// against `algorithms`, exp / nbf (leewaySeconds), aud (audience), iss (issuer) and, with
// topicsClaim, that the token allows the topic. Options: plugins/validator-jwt/README.md.
// OpenSSL directly (no Poco) keeps the plugin small and every rejection reason ours.
#include <streamfence/plugin.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "base64url.hpp"
#include "json_lite.hpp"
#include "jwks.hpp"

using namespace streamfence;

namespace {

// 9999-12-31T23:59:59Z: later exp claims are reported as this expiry.
constexpr double kMaxExpirySeconds = 253402300799.0;

using jwks::Pkey;

const std::set<std::string> kSupportedAlgorithms = {"HS256", "RS256"};
const std::set<std::string> kOptions = {"secret", "publicKeyPem", "publicKeyPemPath", "jwksUrl", "jwksRefreshMs",
                                        "jwksTimeoutMs", "jwksCaPemPath", "algorithms", "audience", "issuer", "topicsClaim", "leewaySeconds"};

std::string join(const std::set<std::string>& s) {
    std::string out;
    for (auto& x : s) out += (out.empty() ? "" : ", ") + x;
    return out;
}

Pkey loadPublicKey(const std::string& pem) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (!bio) throw std::runtime_error("out of memory");
    Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {  // maybe a certificate
        std::unique_ptr<BIO, int (*)(BIO*)> b2(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
        if (X509* cert = PEM_read_bio_X509(b2.get(), nullptr, nullptr, nullptr)) {
            key.reset(X509_get_pubkey(cert));
            X509_free(cert);
        }
    }
    if (!key) throw std::invalid_argument("publicKeyPem: not a PEM public key or certificate");
    if (!EVP_PKEY_is_a(key.get(), "RSA")) throw std::invalid_argument("publicKeyPem: not an RSA key (RS256 needs one)");
    return key;
}

bool allowedTopic(const jsonlite::Value* claim, std::string_view topic) {
    auto match = [&](const jsonlite::Value& v) {
        if (v.type != jsonlite::Value::String) return false;
        const std::string& p = v.s;
        if (!p.empty() && p.back() == '*') return topic.substr(0, p.size() - 1) == std::string_view(p).substr(0, p.size() - 1);
        return topic == p;
    };
    if (!claim) return false;
    if (claim->type == jsonlite::Value::String) return match(*claim);
    if (claim->type != jsonlite::Value::Array) return false;
    for (const auto& v : claim->a)
        if (match(v)) return true;
    return false;
}

}  // namespace

class JwtValidator : public TokenValidator {
public:
    JwtValidator(const Host& host, const Options& o) : host_(host) {
        // A misspelt option would otherwise be ignored silently (e.g. no audience check).
        for (auto& kv : o.all()) {
            std::string top = kv.first.substr(0, kv.first.find('.'));
            if (!kOptions.count(top)) throw std::invalid_argument("unknown option " + kv.first + " (known: " + join(kOptions) + ")");
        }
        secret_ = o.get("secret");
        std::string pem = o.get("publicKeyPem");
        if (pem.empty() && o.has("publicKeyPemPath")) {
            std::ifstream f(o.get("publicKeyPemPath"), std::ios::binary);
            if (!f) throw std::invalid_argument("publicKeyPemPath: cannot read " + o.get("publicKeyPemPath"));
            std::ostringstream ss;
            ss << f.rdbuf();
            pem = ss.str();
        }
        if (!pem.empty()) key_ = loadPublicKey(pem);
        std::string jwksUrl = o.get("jwksUrl");
        jwthttp::Url url;
        if (!jwksUrl.empty()) {
            std::string err;
            if (!jwthttp::parseUrl(jwksUrl, url, err)) throw std::invalid_argument("option jwksUrl: " + err);
            url.caFile = o.get("jwksCaPemPath");
            if (!url.caFile.empty() && !std::ifstream(url.caFile)) throw std::invalid_argument("option jwksCaPemPath: cannot read " + url.caFile);
        }
        long long refreshMs = o.getInt("jwksRefreshMs", 300000);
        if (refreshMs < 1000) throw std::invalid_argument("option jwksRefreshMs: must be >= 1000");
        long long timeoutMs = o.getInt("jwksTimeoutMs", 5000);
        if (timeoutMs < 100 || timeoutMs > 60000) throw std::invalid_argument("option jwksTimeoutMs: must be 100..60000");
        if (secret_.empty() && !key_ && jwksUrl.empty())
            throw std::invalid_argument("configure secret (HS256), or publicKeyPem / publicKeyPemPath / jwksUrl (RS256)");
        if (!secret_.empty() && secret_.size() < 32)
            host_.warn("jwt_weak_secret", "HS256 secret shorter than 32 bytes");

        // algorithms: a list (or one name); default: those the configured keys allow.
        std::set<std::string> algs;
        if (o.has("algorithms") && !o.get("algorithms").empty()) algs.insert(o.get("algorithms"));
        for (auto& kv : o.children("algorithms")) algs.insert(kv.second);
        if (o.has("algorithms") || !o.children("algorithms").empty()) {
            if (algs.empty()) throw std::invalid_argument("option algorithms: empty (supported: " + join(kSupportedAlgorithms) + ")");
            for (auto& a : algs)
                if (!kSupportedAlgorithms.count(a))
                    throw std::invalid_argument("option algorithms: unsupported algorithm \"" + a + "\" (supported: " +
                                                join(kSupportedAlgorithms) + ")");
            if (algs.count("HS256") && secret_.empty()) throw std::invalid_argument("option algorithms: HS256 needs option secret");
            if (algs.count("RS256") && !key_ && jwksUrl.empty())
                throw std::invalid_argument("option algorithms: RS256 needs publicKeyPem, publicKeyPemPath or jwksUrl");
        } else {
            if (!secret_.empty()) algs.insert("HS256");
            if (key_ || !jwksUrl.empty()) algs.insert("RS256");
        }
        hs256_ = algs.count("HS256") && !secret_.empty();
        rs256_ = algs.count("RS256") != 0;
        if (!hs256_ && !secret_.empty()) host_.warn("jwt_secret_unused", "secret is set but HS256 is not in algorithms");

        audience_ = o.get("audience");
        issuer_ = o.get("issuer");
        topicsClaim_ = o.get("topicsClaim");
        leewaySeconds_ = o.getInt("leewaySeconds", 0);
        if (leewaySeconds_ < 0) throw std::invalid_argument("option leewaySeconds: must be >= 0");
        if (!jwksUrl.empty() && rs256_) {
            Host h = host_;
            jwks_ = std::make_unique<jwks::Fetcher>(url, jwksUrl, refreshMs, static_cast<int>(timeoutMs),
                                                    [h](int level, const char* event, const std::string& msg) { h.log(level, event, msg); });
        }
    }

    TokenResult validate(const TokenRequest& rq) override {
        if (rq.token.empty()) return TokenResult::reject("Missing token");
        std::string_view tok = rq.token;
        size_t d1 = tok.find('.');
        size_t d2 = d1 == std::string_view::npos ? d1 : tok.find('.', d1 + 1);
        if (d2 == std::string_view::npos || tok.find('.', d2 + 1) != std::string_view::npos)
            return TokenResult::reject("malformed token");
        std::string headerJson, payloadJson, sig, err;
        jsonlite::Value header, claims;
        if (!jwtb64::decode(tok.substr(0, d1), headerJson) || !jsonlite::parse(headerJson, header, err) ||
            header.type != jsonlite::Value::Object)
            return TokenResult::reject("malformed token header");
        const jsonlite::Value* alg = header.get("alg");
        if (!alg || alg->type != jsonlite::Value::String) return TokenResult::reject("malformed token header");
        if (header.get("crit")) return TokenResult::reject("unsupported crit header");
        std::string a = alg->s;
        for (auto& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (a == "none") return TokenResult::reject("alg none not allowed");
        if (!jwtb64::decode(tok.substr(d2 + 1), sig)) return TokenResult::reject("malformed token signature");

        // Only the algorithm of a configured key: an RS256 public key is never used as an
        // HMAC secret (the classic algorithm-confusion attack).
        std::string_view signingInput = tok.substr(0, d2);
        bool ok;
        if (alg->s == "HS256" && hs256_) {
            ok = verifyHs256(signingInput, sig);
        } else if (alg->s == "RS256" && rs256_) {
            const jsonlite::Value* kidV = header.get("kid");
            std::string kid = kidV && kidV->type == jsonlite::Value::String ? kidV->s : std::string();
            std::string why;
            ok = verifyRs256Any(signingInput, sig, kid, why);
            if (!ok && !why.empty()) return TokenResult::reject(why);
        } else {
            return TokenResult::reject("algorithm not allowed: " + alg->s);
        }
        if (!ok) return TokenResult::reject("invalid signature");

        if (!jwtb64::decode(tok.substr(d1 + 1, d2 - d1 - 1), payloadJson) || !jsonlite::parse(payloadJson, claims, err) ||
            claims.type != jsonlite::Value::Object)
            return TokenResult::reject("malformed token claims");

        double now = static_cast<double>(wallMs()) / 1000.0;
        int64_t expiresAtMs = 0;
        if (const jsonlite::Value* exp = claims.get("exp")) {
            if (exp->type != jsonlite::Value::Number || !std::isfinite(exp->n)) return TokenResult::reject("malformed exp claim");
            if (now >= exp->n + static_cast<double>(leewaySeconds_)) return TokenResult::reject("token expired");
            // Clamped before the cast: a double beyond int64 range makes the cast undefined, and
            // no expiry past the year 9999 means anything different from "then".
            expiresAtMs = static_cast<int64_t>(std::min(exp->n, kMaxExpirySeconds) * 1000.0);
        }
        if (const jsonlite::Value* nbf = claims.get("nbf")) {
            if (nbf->type != jsonlite::Value::Number || !std::isfinite(nbf->n)) return TokenResult::reject("malformed nbf claim");
            if (now + static_cast<double>(leewaySeconds_) < nbf->n) return TokenResult::reject("token not yet valid");
        }
        if (!audience_.empty() && !hasAudience(claims.get("aud"))) return TokenResult::reject("audience mismatch");
        if (!issuer_.empty()) {
            const jsonlite::Value* iss = claims.get("iss");
            if (!iss || iss->type != jsonlite::Value::String || iss->s != issuer_) return TokenResult::reject("issuer mismatch");
        }
        if (!topicsClaim_.empty() && !rq.topic.empty() && !allowedTopic(claims.get(topicsClaim_), rq.topic))
            return TokenResult::reject("topic not allowed by token");
        const jsonlite::Value* sub = claims.get("sub");
        return TokenResult::accept(sub && sub->type == jsonlite::Value::String ? sub->s : std::string(), expiresAtMs);
    }

private:
    uint64_t wallMs() const {
        if (uint64_t ms = host_.wallMs()) return ms;
        using namespace std::chrono;
        return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
    }

    bool verifyHs256(std::string_view input, const std::string& sig) const {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (!HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
                  reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len))
            return false;
        return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
    }

    // The JWKS keys named by kid (all of them for a token without kid), then the static key.
    // why is set when there was no key to try at all.
    bool verifyRs256Any(std::string_view input, const std::string& sig, const std::string& kid, std::string& why) const {
        if (jwks_) {
            auto set = jwks_->keys();
            bool tried = false;
            if (set)
                for (const auto& k : *set) {
                    if (!kid.empty() && k.kid != kid) continue;
                    tried = true;
                    if (verifyRs256(k.pkey.get(), input, sig)) return true;
                }
            if (!tried) {
                jwks_->refreshSoon();  // keys may have rotated since the last fetch
                if (!key_) {
                    why = set ? "unknown key id \"" + kid + "\"" : "signing keys not loaded yet";
                    return false;
                }
            }
        }
        return key_ && verifyRs256(key_.get(), input, sig);
    }

    static bool verifyRs256(EVP_PKEY* key, std::string_view input, const std::string& sig) {
        std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
        if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
        return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    }

    bool hasAudience(const jsonlite::Value* aud) const {
        if (!aud) return false;
        if (aud->type == jsonlite::Value::String) return aud->s == audience_;
        if (aud->type == jsonlite::Value::Array)
            for (const auto& v : aud->a)
                if (v.type == jsonlite::Value::String && v.s == audience_) return true;
        return false;
    }

    Host host_;
    std::string secret_;
    Pkey key_;
    bool hs256_ = false, rs256_ = false;
    std::string audience_, issuer_, topicsClaim_;
    long long leewaySeconds_ = 0;
    std::unique_ptr<jwks::Fetcher> jwks_;  // last member: its thread stops before the rest goes
};

STREAMFENCE_TOKEN_VALIDATOR(JwtValidator, "jwt", "1.0.0", "JWT (HS256 / RS256, JWKS) with exp, nbf, aud, iss and topic claims")
