// The control-API publish request the bench tools (loadgen, storm) send: POST /v1/publish with a
// JSON array of {"namespace","topic","payload":{"ts","seq","pad"}} entries (docs/message-path.md).
// No I/O: the callers own the keep-alive connection.
#pragma once

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bench {

// Appends one entry; ts is CLOCK_MONOTONIC ns (latency), seq a consecutive number (gaps, duplicates).
inline void appendPublishEntry(std::string& body, const std::string& ns, const std::string& topic, uint64_t ts,
                               uint64_t seq, const std::string& pad) {
    char num[96];
    body += "{\"namespace\":\"";
    body += ns;
    body += "\",\"topic\":\"";
    body += topic;
    body += "\",\"payload\":{";
    std::snprintf(num, sizeof num, "\"ts\":%" PRIu64 ",\"seq\":%" PRIu64, ts, seq);
    body += num;
    body += ",\"pad\":\"";
    body += pad;
    body += "\"}}";
}

// The request line and headers for a body of bodySize bytes; an empty token sends no Authorization.
inline std::string publishRequestHead(const std::string& host, int port, const std::string& token, size_t bodySize) {
    char head[512];
    std::snprintf(head, sizeof head,
                  "POST /v1/publish HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                  "%s%s%sContent-Length: %zu\r\n\r\n",
                  host.c_str(), port, token.empty() ? "" : "Authorization: Bearer ", token.c_str(),
                  token.empty() ? "" : "\r\n", bodySize);
    return head;
}

}  // namespace bench
