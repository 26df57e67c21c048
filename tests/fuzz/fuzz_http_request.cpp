// HTTP/1.1 request parser (host/protocol/http_request): the bytes of one connection, fed in
// chunks whose size the first input byte picks, through pipelined requests, plus the
// websocket upgrade check and handshake answer the server builds from a parsed request.
#include <string>

#include "fuzz_check.hpp"
#include "protocol/http_request.hpp"
#include "protocol/websocket.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t chunk = 1 + data[0] % 64;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    http::RequestParser::Limits lim;
    lim.maxHeaderBytes = 512;  // small limits so the fuzzer reaches them
    lim.maxBodyBytes = 1024;
    http::RequestParser p(lim);
    size_t pos = 0;
    int requests = 0;
    while (pos < in.size()) {
        std::string_view piece = in.substr(pos, chunk);
        size_t used = 0;
        auto st = p.feed(piece, used);
        FUZZ_CHECK(used <= piece.size());
        pos += used;
        // The parser never holds more than its limits allow (+4: a split terminator).
        FUZZ_CHECK(p.bufferedBytes() <= lim.maxHeaderBytes + 4 + lim.maxBodyBytes);
        if (st == http::RequestParser::Status::Error) {
            int s = p.errorStatus();
            FUZZ_CHECK(s == 400 || s == 411 || s == 413 || s == 431 || s == 501 || s == 505);
            FUZZ_CHECK(!p.errorReason().empty());
            http::response(s, "text/plain", p.errorReason(), false);
            break;
        }
        if (st == http::RequestParser::Status::NeedMore) {
            FUZZ_CHECK(used == piece.size());  // NeedMore takes everything offered
            continue;
        }
        const http::Request& r = p.request();
        FUZZ_CHECK(!r.method.empty() && !r.target.empty());
        FUZZ_CHECK(r.minorVersion == 0 || r.minorVersion == 1);
        FUZZ_CHECK(r.body.size() <= lim.maxBodyBytes);
        FUZZ_CHECK(r.target.compare(0, r.path.size(), r.path) == 0);
        (void)r.keepAlive();
        (void)r.queryParam("sid");
        (void)r.headerOr("origin");
        // A 101 answer exactly for a complete upgrade request (key of 24 chars, version 13).
        const std::string* key = r.header("sec-websocket-key");
        const std::string* ver = r.header("sec-websocket-version");
        bool complete = ws::isUpgradeRequest(r) && key && key->size() == 24 && ver && *ver == "13";
        FUZZ_CHECK(ws::handshakeResponse(r).empty() != complete);
        p.reset();
        if (++requests > 64) break;
    }
    return 0;
}
