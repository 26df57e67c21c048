#include "protocol/http_request.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace sf::http {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// RFC 7230 tchar: what a method or header name may contain.
bool isToken(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        if (std::isalnum(c)) continue;
        if (!std::strchr("!#$%&'*+-.^_`|~", c) || c == 0) return false;
    }
    return true;
}

int hexVal(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

const std::string* Request::header(std::string_view lowerName) const {
    for (auto& h : headers)
        if (h.first == lowerName) return &h.second;
    return nullptr;
}

std::string Request::headerOr(std::string_view lowerName, std::string_view dflt) const {
    auto* h = header(lowerName);
    return h ? *h : std::string(dflt);
}

const std::string* Request::queryParam(std::string_view name) const {
    for (auto& q : query)
        if (q.first == name) return &q.second;
    return nullptr;
}

bool Request::headerHasToken(std::string_view lowerName, std::string_view token) const {
    for (auto& h : headers) {
        if (h.first != lowerName) continue;
        std::string_view v = h.second;
        while (!v.empty()) {
            size_t c = v.find(',');
            std::string_view part = trim(v.substr(0, c));
            if (iequals(part, token)) return true;
            if (c == std::string_view::npos) break;
            v.remove_prefix(c + 1);
        }
    }
    return false;
}

bool Request::keepAlive() const {
    if (headerHasToken("connection", "close")) return false;
    if (minorVersion == 0) return headerHasToken("connection", "keep-alive");
    return true;
}

bool percentDecode(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int h = hexVal(in[i + 1]), l = hexVal(in[i + 2]);
            if (h < 0 || l < 0) return false;
            out.push_back(static_cast<char>(h * 16 + l));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return true;
}

std::vector<std::pair<std::string, std::string>> parseQuery(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view part = q.substr(0, amp);
        if (!part.empty()) {
            size_t eq = part.find('=');
            std::string_view k = part.substr(0, eq);
            std::string_view v = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
            std::string dk, dv;
            if (!percentDecode(k, dk)) dk.assign(k);
            if (!percentDecode(v, dv)) dv.assign(v);
            out.emplace_back(std::move(dk), std::move(dv));
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return out;
}

void RequestParser::reset() {
    req_ = Request{};
    head_.clear();
    inBody_ = false;
    contentLength_ = 0;
    errStatus_ = 0;
    errReason_.clear();
}

RequestParser::Status RequestParser::fail(int status, std::string reason) {
    errStatus_ = status;
    errReason_ = std::move(reason);
    return Status::Error;
}

RequestParser::Status RequestParser::feed(std::string_view data, size_t& consumed) {
    consumed = 0;
    if (errStatus_) return Status::Error;
    if (!inBody_) {
        // Tolerate empty lines before a request line (RFC 7230 3.5).
        while (head_.empty() && consumed < data.size() && (data[consumed] == '\r' || data[consumed] == '\n')) ++consumed;
        size_t old = head_.size();
        // Never hold more than the header limit (+4 for the terminator being split).
        size_t room = limits_.maxHeaderBytes + 4 > old ? limits_.maxHeaderBytes + 4 - old : 0;
        size_t take = std::min(room, data.size() - consumed);
        head_.append(data.data() + consumed, take);
        size_t from = old >= 3 ? old - 3 : 0;
        size_t p = head_.find("\r\n\r\n", from);
        if (p == std::string::npos) {
            consumed += take;
            if (head_.size() > limits_.maxHeaderBytes) return fail(431, "headers too large");
            return Status::NeedMore;
        }
        size_t end = p + 4;
        consumed += end - old;
        head_.resize(end);
        if (!parseHead()) return Status::Error;
        inBody_ = true;
    }
    size_t want = contentLength_ - req_.body.size();
    size_t take = std::min(want, data.size() - consumed);
    req_.body.append(data.data() + consumed, take);
    consumed += take;
    return req_.body.size() == contentLength_ ? Status::Done : Status::NeedMore;
}

bool RequestParser::parseHead() {
    std::string_view h(head_);
    h.remove_suffix(4);
    size_t eol = h.find("\r\n");
    std::string_view line = h.substr(0, eol);
    h = eol == std::string_view::npos ? std::string_view{} : h.substr(eol + 2);

    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        fail(400, "bad request line");
        return false;
    }
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = line.substr(sp2 + 1);
    if (!isToken(method) || target.empty()) {
        fail(400, "bad request line");
        return false;
    }
    for (unsigned char c : target)
        if (c <= 0x20 || c == 0x7f) {
            fail(400, "bad request target");
            return false;
        }
    if (version == "HTTP/1.1") req_.minorVersion = 1;
    else if (version == "HTTP/1.0") req_.minorVersion = 0;
    else {
        fail(version.substr(0, 5) == "HTTP/" ? 505 : 400, "bad http version");
        return false;
    }
    req_.method.assign(method);
    req_.target.assign(target);
    size_t q = target.find('?');
    req_.path.assign(target.substr(0, q));
    if (q != std::string_view::npos) {
        req_.rawQuery.assign(target.substr(q + 1));
        req_.query = parseQuery(req_.rawQuery);
    }

    bool haveLength = false;
    while (!h.empty()) {
        eol = h.find("\r\n");
        line = h.substr(0, eol);
        h = eol == std::string_view::npos ? std::string_view{} : h.substr(eol + 2);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || !isToken(line.substr(0, colon))) {
            fail(400, "bad header line");
            return false;
        }
        std::string name(line.substr(0, colon));
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = trim(line.substr(colon + 1));
        for (unsigned char c : value)
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                fail(400, "bad header value");
                return false;
            }
        if (name == "content-length") {
            if (value.empty() || value.size() > 12 || value.find_first_not_of("0123456789") != std::string_view::npos) {
                fail(400, "bad content-length");
                return false;
            }
            size_t n = std::stoull(std::string(value));
            if (haveLength && n != contentLength_) {
                fail(400, "conflicting content-length");
                return false;
            }
            haveLength = true;
            contentLength_ = n;
        } else if (name == "transfer-encoding") {
            // Engine.IO clients always send a length; chunked bodies are refused, not guessed.
            fail(411, "chunked request bodies are not supported");
            return false;
        }
        req_.headers.emplace_back(std::move(name), std::string(value));
    }
    if (contentLength_ > limits_.maxBodyBytes) {
        fail(413, "body too large");
        return false;
    }
    req_.body.reserve(contentLength_);
    return true;
}

const char* statusText(int s) {
    switch (s) {
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 426: return "Upgrade Required";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string response(int status, std::string_view contentType, std::string_view body, bool keepAlive,
                     std::string_view extraHeaders) {
    std::string r;
    r.reserve(160 + extraHeaders.size() + body.size());
    r += "HTTP/1.1 ";
    r += std::to_string(status);
    r += ' ';
    r += statusText(status);
    r += "\r\n";
    if (!contentType.empty()) {
        r += "Content-Type: ";
        r += contentType;
        r += "\r\n";
    }
    r += "Content-Length: ";
    r += std::to_string(body.size());
    r += "\r\n";
    r += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    r += extraHeaders;
    r += "\r\n";
    r += body;
    return r;
}

}  // namespace sf::http
