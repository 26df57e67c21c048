#include "config/json_syntax.hpp"

#include <cctype>

namespace sf::config {
namespace {

// Recursive descent over RFC 8259. Depth-limited so hostile input cannot blow the stack.
class Checker {
public:
    explicit Checker(const std::string& t) : t_(t) {}

    std::optional<JsonSyntaxError> run() {
        skipWs();
        if (at_ >= t_.size()) return fail("empty JSON document");
        if (!value(0)) return err_;
        skipWs();
        if (at_ < t_.size()) return fail("unexpected " + describe() + " after the JSON document");
        return std::nullopt;
    }

private:
    static constexpr int kMaxDepth = 256;
    const std::string& t_;
    size_t at_ = 0;
    std::optional<JsonSyntaxError> err_;

    std::optional<JsonSyntaxError> fail(const std::string& msg) {
        if (err_) return err_;
        JsonSyntaxError e;
        for (size_t i = 0; i < at_ && i < t_.size(); ++i) {
            if (t_[i] == '\n') { ++e.line; e.column = 1; }
            else ++e.column;
        }
        e.message = "invalid JSON: " + msg;
        err_ = e;
        return err_;
    }
    bool failB(const std::string& msg) { fail(msg); return false; }

    std::string describe() const {
        if (at_ >= t_.size()) return "end of file";
        char c = t_[at_];
        if (c == '#') return "'#' (comments are not allowed in JSON)";
        if (c == '\'') return "\"'\" (JSON strings use double quotes)";
        if (std::isprint(static_cast<unsigned char>(c))) return std::string("'") + c + "'";
        return "byte " + std::to_string(static_cast<unsigned char>(c));
    }

    void skipWs() {
        while (at_ < t_.size() && (t_[at_] == ' ' || t_[at_] == '\t' || t_[at_] == '\n' || t_[at_] == '\r')) ++at_;
    }

    bool literal(const char* word) {
        size_t n = 0;
        while (word[n]) ++n;
        if (t_.compare(at_, n, word) != 0) return failB("unexpected " + describe());
        at_ += n;
        return true;
    }

    bool value(int depth) {
        if (depth > kMaxDepth) return failB("nested too deeply");
        skipWs();
        if (at_ >= t_.size()) return failB("unexpected end of file, expected a value");
        switch (t_[at_]) {
            case '{': return object(depth);
            case '[': return array(depth);
            case '"': return string();
            case 't': return literal("true");
            case 'f': return literal("false");
            case 'n': return literal("null");
            default:
                if (t_[at_] == '-' || std::isdigit(static_cast<unsigned char>(t_[at_]))) return number();
                return failB("unexpected " + describe() + ", expected a value");
        }
    }

    bool object(int depth) {
        ++at_;  // '{'
        skipWs();
        if (at_ < t_.size() && t_[at_] == '}') { ++at_; return true; }
        for (;;) {
            skipWs();
            if (at_ >= t_.size() || t_[at_] != '"')
                return failB("unexpected " + describe() + ", expected a key in double quotes");
            if (!string()) return false;
            skipWs();
            if (at_ >= t_.size() || t_[at_] != ':') return failB("unexpected " + describe() + ", expected ':'");
            ++at_;
            if (!value(depth + 1)) return false;
            skipWs();
            if (at_ < t_.size() && t_[at_] == ',') { ++at_; continue; }
            if (at_ < t_.size() && t_[at_] == '}') { ++at_; return true; }
            return failB("unexpected " + describe() + ", expected ',' or '}'");
        }
    }

    bool array(int depth) {
        ++at_;  // '['
        skipWs();
        if (at_ < t_.size() && t_[at_] == ']') { ++at_; return true; }
        for (;;) {
            if (!value(depth + 1)) return false;
            skipWs();
            if (at_ < t_.size() && t_[at_] == ',') { ++at_; continue; }
            if (at_ < t_.size() && t_[at_] == ']') { ++at_; return true; }
            return failB("unexpected " + describe() + ", expected ',' or ']'");
        }
    }

    bool string() {
        ++at_;  // opening quote
        while (at_ < t_.size()) {
            unsigned char c = static_cast<unsigned char>(t_[at_]);
            if (c == '"') { ++at_; return true; }
            if (c < 0x20) return failB("control character in string");
            if (c == '\\') {
                ++at_;
                if (at_ >= t_.size()) break;
                char e = t_[at_];
                if (e == 'u') {
                    for (int i = 1; i <= 4; ++i)
                        if (at_ + i >= t_.size() || !std::isxdigit(static_cast<unsigned char>(t_[at_ + i])))
                            return failB("invalid \\u escape");
                    at_ += 4;
                } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') {
                    return failB(std::string("invalid escape '\\") + e + "'");
                }
            }
            ++at_;
        }
        return failB("unterminated string");
    }

    bool digits() {
        size_t start = at_;
        while (at_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[at_]))) ++at_;
        return at_ > start;
    }

    bool number() {
        if (t_[at_] == '-') ++at_;
        if (at_ < t_.size() && t_[at_] == '0') ++at_;
        else if (!digits()) return failB("invalid number");
        if (at_ < t_.size() && t_[at_] == '.') {
            ++at_;
            if (!digits()) return failB("invalid number");
        }
        if (at_ < t_.size() && (t_[at_] == 'e' || t_[at_] == 'E')) {
            ++at_;
            if (at_ < t_.size() && (t_[at_] == '+' || t_[at_] == '-')) ++at_;
            if (!digits()) return failB("invalid number");
        }
        return true;
    }
};

}  // namespace

std::optional<JsonSyntaxError> checkJsonSyntax(const std::string& text) {
    return Checker(text).run();
}

}  // namespace sf::config
