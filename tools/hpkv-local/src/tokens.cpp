#include "tokens.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
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

std::int64_t nowMs() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string apiKeyId(const std::string& apiKey) {
    Poco::SHA2Engine e(Poco::SHA2Engine::SHA_256);
    e.update(apiKey);
    return Poco::DigestEngine::digestToHex(e.digest()).substr(0, 16);
}

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
    const Poco::Int64 iat = static_cast<Poco::Int64>(nowMs() / 1000);
    Poco::JWT::Token token;
    token.setType("JWT");
    token.setSubject(keyId);
    token.payload().set("iat", iat);
    token.payload().set("exp", static_cast<Poco::Int64>(iat + ttl_.count()));
    Poco::JSON::Array::Ptr sp = new Poco::JSON::Array;
    for (const auto& p : patterns) sp->add(p);
    token.payload().set("sp", sp);
    if (accessPattern) token.payload().set("ap", *accessPattern);
    return Poco::JWT::Signer(secret_).sign(token, Poco::JWT::Signer::ALGO_HS256);
}

std::optional<TokenClaims> TokenService::verify(const std::string& token) const {
    Poco::JWT::Token t;
    try {
        if (!Poco::JWT::Signer(secret_).tryVerify(token, t)) return std::nullopt;  // HS256 only
        const Poco::JSON::Object& obj = t.payload();
        TokenClaims c;
        c.keyId = obj.getValue<std::string>("sub");
        const Poco::Int64 exp = obj.getValue<Poco::Int64>("exp");  // seconds
        if (exp <= 0 || exp > std::numeric_limits<Poco::Int64>::max() / 1000) return std::nullopt;
        c.expiresMs = exp * 1000;
        if (c.expiresMs <= nowMs()) return std::nullopt;
        auto sp = obj.getArray("sp");
        if (sp)
            for (std::size_t i = 0; i < sp->size(); ++i) c.subscribePatterns.push_back(sp->getElement<std::string>(static_cast<unsigned>(i)));
        if (obj.has("ap")) c.accessPattern = obj.getValue<std::string>("ap");
        return c;
    } catch (const std::exception&) {
        return std::nullopt;  // not a JWT at all, or signed by us with a changed claim format
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
