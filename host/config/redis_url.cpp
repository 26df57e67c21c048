#include "config/redis_url.hpp"

#include <cctype>

namespace sf::config {
namespace {

// %XX escapes in user and password (a password may hold '@' or ':').
bool percentDecode(const std::string& in, std::string& out) {
    out.clear();
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(in[i + 2])))
            return false;
        out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
        i += 2;
    }
    return true;
}

bool allDigits(const std::string& s) {
    if (s.empty() || s.size() > 9) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

bool parseRedisUrl(const std::string& text, RedisUrl& out, std::string& error) {
    RedisUrl u;
    const std::string scheme = "redis://";
    if (text.compare(0, scheme.size(), scheme) != 0) {
        error = "expected redis://[:password@]host[:port][/db]" +
                std::string(text.compare(0, 9, "rediss://") == 0 ? " (TLS to Redis is not supported)" : "");
        return false;
    }
    std::string rest = text.substr(scheme.size());
    std::string path;
    if (size_t slash = rest.find('/'); slash != std::string::npos) {
        path = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    if (size_t at = rest.rfind('@'); at != std::string::npos) {
        std::string cred = rest.substr(0, at);
        rest = rest.substr(at + 1);
        size_t colon = cred.find(':');
        std::string user = colon == std::string::npos ? std::string() : cred.substr(0, colon);
        std::string pass = colon == std::string::npos ? cred : cred.substr(colon + 1);
        if (!percentDecode(user, u.user) || !percentDecode(pass, u.password)) {
            error = "bad %-escape in the credentials";
            return false;
        }
        if (u.password.empty()) {
            error = "empty password before '@'";
            return false;
        }
    }
    std::string portText;
    if (!rest.empty() && rest[0] == '[') {
        size_t close = rest.find(']');
        if (close == std::string::npos) {
            error = "unclosed '[' in the host";
            return false;
        }
        u.host = rest.substr(1, close - 1);
        std::string after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') {
                error = "unexpected text after the IPv6 address";
                return false;
            }
            portText = after.substr(1);
            if (portText.empty()) {
                error = "empty port";
                return false;
            }
        }
    } else {
        size_t colon = rest.find(':');
        u.host = rest.substr(0, colon);
        if (colon != std::string::npos) {
            portText = rest.substr(colon + 1);
            if (portText.empty()) {
                error = "empty port";
                return false;
            }
        }
    }
    if (u.host.empty()) {
        error = "missing host";
        return false;
    }
    for (char c : u.host) {
        if (std::isspace(static_cast<unsigned char>(c)) || c == '@' || c == '/' || c == '?' || c == '#') {
            error = "invalid character in the host";
            return false;
        }
    }
    if (!portText.empty()) {
        if (!allDigits(portText) || std::stoi(portText) < 1 || std::stoi(portText) > 65535) {
            error = "port must be 1..65535, got \"" + portText + "\"";
            return false;
        }
        u.port = std::stoi(portText);
    }
    if (!path.empty()) {
        if (!allDigits(path) || std::stoi(path) > 1000000) {
            error = "database must be a number, got \"" + path + "\"";
            return false;
        }
        u.db = std::stoi(path);
    }
    out = u;
    return true;
}

}  // namespace sf::config
