// A minimal HTTP/1.1 GET client for fetching a JWKS document (http:// and https://, the
// latter verified against the system CA store, or a given CA file, and the URL's host). Blocking, with a
// deadline, and cancellable: the caller's wake fd (an eventfd) aborts it at once, so the
// validator's destructor never waits for a slow server.
#pragma once
#include <string>

namespace jwthttp {

struct Url {
    bool tls = false;
    std::string host, port, path;  // path includes the query
    std::string caFile;            // https: trust these CAs instead of the system store
};

// False with err on anything but http(s)://host[:port][/path].
bool parseUrl(const std::string& text, Url& out, std::string& err);

struct Response {
    int status = 0;
    std::string body;
};

// GET url; false with err on a network, TLS or protocol failure, a timeout, cancellation
// (cancelFd readable) or a body over maxBytes. A non-200 status is a success here.
bool get(const Url& url, int timeoutMs, int cancelFd, size_t maxBytes, Response& out, std::string& err);

}  // namespace jwthttp
