#include "tokens.hpp"

#include "json_util.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/SHA2Engine.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

namespace hpkv {
namespace {

std::string sha256(const std::string& data) {
    Poco::SHA2Engine e(Poco::SHA2Engine::SHA_256);
    e.update(data);
    const auto& d = e.digest();
    return std::string(d.begin(), d.end());
}

// HMAC-SHA256 (RFC 2104); Poco 1.11's HMACEngine cannot wrap SHA2Engine.
std::string hmacSha256(const std::string& key, const std::string& msg) {
    std::string k = key.size() > 64 ? sha256(key) : key;
    k.resize(64, '\0');
    std::string ipad(64, '\0'), opad(64, '\0');
    for (int i = 0; i < 64; ++i) {
        ipad[i] = static_cast<char>(k[i] ^ 0x36);
        opad[i] = static_cast<char>(k[i] ^ 0x5c);
    }
    return sha256(opad + sha256(ipad + msg));
}

std::string toHex(const std::string& bytes) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
    return out;
}

std::string b64url(const std::string& in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    while (i + 2 < in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out += tbl[(v >> 18) & 63]; out += tbl[(v >> 12) & 63]; out += tbl[(v >> 6) & 63]; out += tbl[v & 63];
        i += 3;
    }
    if (i + 1 == in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += tbl[(v >> 18) & 63]; out += tbl[(v >> 12) & 63];
    } else if (i + 2 == in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += tbl[(v >> 18) & 63]; out += tbl[(v >> 12) & 63]; out += tbl[(v >> 6) & 63];
    }
    return out;
}

std::optional<std::string> unb64url(const std::string& in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '-') return 62;
        if (c == '_') return 63;
        return -1;
    };
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    unsigned buf = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) return std::nullopt;
        buf = (buf << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buf >> bits) & 0xFF));
        }
    }
    return out;
}

bool constTimeEq(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    unsigned char d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
    return d == 0;
}

std::int64_t nowMs() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const std::string kHeader = b64url(R"({"alg":"HS256","typ":"JWT"})");

}  // namespace

std::string apiKeyId(const std::string& apiKey) { return toHex(sha256(apiKey)).substr(0, 16); }

ApiKeys::ApiKeys(const std::vector<std::string>& keys) {
    for (const auto& k : keys) keyToId_[k] = apiKeyId(k);
}

std::optional<std::string> ApiKeys::check(const std::string& key) const {
    auto it = keyToId_.find(key);
    if (it == keyToId_.end()) return std::nullopt;
    return it->second;
}

bool ApiKeys::hasId(const std::string& id) const {
    for (const auto& [k, v] : keyToId_)
        if (v == id) return true;
    return false;
}

std::string TokenService::loadOrCreateSecret(const std::string& dataDir) {
    std::string secret(32, '\0');
    if (getrandom(secret.data(), secret.size(), 0) != static_cast<ssize_t>(secret.size()))
        throw std::runtime_error("getrandom failed");
    if (dataDir.empty()) return secret;
    const std::string path = dataDir + "/token-secret";
    {
        std::ifstream in(path, std::ios::binary);
        std::string existing((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (existing.size() >= 32) return existing;
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, secret.data(), secret.size()) != static_cast<ssize_t>(secret.size()) || ::fsync(fd) != 0) {
        std::string err = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot write " + path + ": " + err);
    }
    ::close(fd);
    return secret;
}

std::string TokenService::issue(const std::string& keyId, const std::vector<std::string>& patterns,
                                const std::optional<std::string>& accessPattern) const {
    // iat and exp in seconds since the epoch, as JWT claims are (NumericDate).
    const int64_t iat = nowMs() / 1000;
    std::string payload = "{\"sub\":" + jsonString(keyId) + ",\"iat\":" + std::to_string(iat) +
                          ",\"exp\":" + std::to_string(iat + ttl_.count()) + ",\"sp\":[";
    for (std::size_t i = 0; i < patterns.size(); ++i) {
        if (i) payload += ',';
        appendJsonString(payload, patterns[i]);
    }
    payload += ']';
    if (accessPattern) payload += ",\"ap\":" + jsonString(*accessPattern);
    payload += '}';
    std::string signingInput = kHeader + "." + b64url(payload);
    return signingInput + "." + b64url(hmacSha256(secret_, signingInput));
}

std::optional<TokenClaims> TokenService::verify(const std::string& token) const {
    auto d1 = token.find('.');
    auto d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string::npos) return std::nullopt;
    std::string signingInput = token.substr(0, d2);
    auto sig = unb64url(token.substr(d2 + 1));
    if (!sig || !constTimeEq(*sig, hmacSha256(secret_, signingInput))) return std::nullopt;
    auto payload = unb64url(token.substr(d1 + 1, d2 - d1 - 1));
    if (!payload) return std::nullopt;
    try {
        Poco::JSON::Parser parser;
        auto obj = parser.parse(*payload).extract<Poco::JSON::Object::Ptr>();
        TokenClaims c;
        c.keyId = obj->getValue<std::string>("sub");
        const Poco::Int64 exp = obj->getValue<Poco::Int64>("exp");  // seconds
        if (exp <= 0 || exp > std::numeric_limits<Poco::Int64>::max() / 1000) return std::nullopt;
        c.expiresMs = exp * 1000;
        if (c.expiresMs <= nowMs()) return std::nullopt;
        auto sp = obj->getArray("sp");
        if (sp)
            for (std::size_t i = 0; i < sp->size(); ++i) c.subscribePatterns.push_back(sp->getElement<std::string>(static_cast<unsigned>(i)));
        if (obj->has("ap")) c.accessPattern = obj->getValue<std::string>("ap");
        return c;
    } catch (const std::exception&) {
        return std::nullopt;  // signed by us, so only reachable with a changed claim format
    }
}

bool globMatch(const std::string& pattern, const std::string& key) {
    if (pattern.find('*') == std::string::npos) return pattern == key;
    // Iterative glob with backtracking to the last '*': linear-ish, no recursion.
    std::size_t p = 0, k = 0, star = std::string::npos, mark = 0;
    while (k < key.size()) {
        if (p < pattern.size() && pattern[p] == '*') { star = p++; mark = k; }
        else if (p < pattern.size() && pattern[p] == key[k]) { ++p; ++k; }
        else if (star != std::string::npos) { p = star + 1; k = ++mark; }
        else return false;
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

}  // namespace hpkv
