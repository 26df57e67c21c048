// Incremental, bounded HTTP/1.1 request parser and a small response writer. It serves the
// engine.io endpoint only (handshake, polling GET/POST, websocket upgrade), so it is strict:
// no chunked request bodies (answered 411), headers <= maxHeaderBytes, bodies <= maxBodyBytes.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sf::http {

struct Request {
    std::string method;
    std::string target;   // as sent: /socket.io/?EIO=4&transport=polling
    std::string path;     // target before '?', not decoded
    std::string rawQuery; // after '?'
    int minorVersion = 1; // HTTP/1.<minor>
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
    std::vector<std::pair<std::string, std::string>> query;    // percent-decoded
    std::string body;

    const std::string* header(std::string_view lowerName) const;
    std::string headerOr(std::string_view lowerName, std::string_view dflt = {}) const;
    const std::string* queryParam(std::string_view name) const;  // first occurrence
    bool keepAlive() const;  // HTTP/1.1 default on, 1.0 default off, Connection header wins
    // Case-insensitive search for a token in a comma-separated header (Connection: keep-alive, Upgrade).
    bool headerHasToken(std::string_view lowerName, std::string_view token) const;
};

class RequestParser {
public:
    struct Limits {
        size_t maxHeaderBytes = 16 * 1024;
        size_t maxBodyBytes = 1000000 + 4096;
    };
    enum class Status { NeedMore, Done, Error };

    RequestParser() : limits_(Limits{}) {}
    explicit RequestParser(Limits l) : limits_(l) {}

    // Feed bytes; `consumed` is how many were taken. Done: request() is complete and any
    // bytes after it (pipelining, websocket frames) were not consumed. Error: errorStatus()
    // is the HTTP status to answer (400, 411, 413, 431, 501, 505) before closing.
    Status feed(std::string_view data, size_t& consumed);
    Request& request() { return req_; }
    int errorStatus() const { return errStatus_; }
    const std::string& errorReason() const { return errReason_; }
    void reset();  // ready for the next request on the same connection
    size_t bufferedBytes() const { return head_.size() + req_.body.size(); }
    bool headComplete() const { return inBody_; }  // request line + headers parsed, body pending

private:
    Status fail(int status, std::string reason);
    bool parseHead();

    Limits limits_;
    Request req_;
    std::string head_;  // request line + headers until the blank line
    bool inBody_ = false;
    size_t contentLength_ = 0;
    int errStatus_ = 0;
    std::string errReason_;
};

// Percent-decoding ('+' becomes a space, as in form/query strings). False on a bad escape.
bool percentDecode(std::string_view in, std::string& out);
// Split a query string into decoded pairs; malformed escapes are kept raw, like Node's querystring.
std::vector<std::pair<std::string, std::string>> parseQuery(std::string_view q);

const char* statusText(int status);

inline constexpr const char* kTextPlain = "text/plain; charset=UTF-8";
inline constexpr const char* kJson = "application/json";

// A complete response with Content-Length. extraHeaders are full lines ending in \r\n.
std::string response(int status, std::string_view contentType, std::string_view body,
                     bool keepAlive, std::string_view extraHeaders = {});

}  // namespace sf::http
