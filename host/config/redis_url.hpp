// The `cluster.redis.url` value: redis://[[user]:password@]host[:port][/db] (docs/cluster.md).
// Parsed by the config schema (so --check reports a bad URL with file:line) and by the
// cluster link, which connects to host:port itself.
#pragma once
#include <string>

namespace sf::config {

struct RedisUrl {
    std::string host;      // as written: a name, an IPv4 address or a bracketed IPv6 address without brackets
    int port = 6379;
    std::string user;      // empty: AUTH <password> (Redis < 6 style)
    std::string password;  // empty: no AUTH
    int db = 0;
};

// False with a one-line reason in `error` when the text is not such a URL.
bool parseRedisUrl(const std::string& text, RedisUrl& out, std::string& error);

}  // namespace sf::config
