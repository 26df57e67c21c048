#include "common/json.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace sf::json {

Value::Value(double v) : type_(Type::Number), num_(v) {
    // Integers print without a fraction, like JS; other values with round-trip precision.
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
        s_ = std::to_string(static_cast<int64_t>(v));
    } else if (!std::isfinite(v)) {
        type_ = Type::Null;  // JSON.stringify(NaN) === "null"
    } else {
        char buf[32];
        for (int prec = 15; prec <= 17; ++prec) {
            std::snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (std::strtod(buf, nullptr) == v) break;
        }
        s_ = buf;
    }
}

Value Value::binary(std::string bytes) {
    Value v;
    v.type_ = Type::Binary;
    v.bin_ = std::make_shared<const std::string>(std::move(bytes));
    return v;
}

Value Value::numberText(std::string text, double v) {
    Value out;
    out.type_ = Type::Number;
    out.num_ = v;
    out.s_ = std::move(text);
    return out;
}

bool Value::isInteger() const {
    return type_ == Type::Number && std::isfinite(num_) && num_ == std::floor(num_);
}

const Value* Value::find(std::string_view key) const {
    if (type_ != Type::Object) return nullptr;
    for (auto& kv : obj_)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

Value* Value::find(std::string_view key) {
    if (type_ != Type::Object) return nullptr;
    for (auto& kv : obj_)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

Value& Value::set(std::string key, Value v) {
    if (type_ != Type::Object) {
        *this = Value(Object{});
    }
    for (auto& kv : obj_)
        if (kv.first == key) {
            kv.second = std::move(v);
            return kv.second;
        }
    obj_.emplace_back(std::move(key), std::move(v));
    return obj_.back().second;
}

void quoteTo(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\b': out.append("\\b"); break;
            case '\f': out.append("\\f"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            default:
                if (c < 0x20) {
                    out.append("\\u00");
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

std::string quote(std::string_view s) {
    std::string out;
    quoteTo(out, s);
    return out;
}

void Value::dumpTo(std::string& out) const {
    switch (type_) {
        case Type::Null: out.append("null"); break;
        case Type::Bool: out.append(b_ ? "true" : "false"); break;
        case Type::Number: out.append(s_); break;
        case Type::String: quoteTo(out, s_); break;
        case Type::Binary: out.append("{\"_binary\":").append(std::to_string(bin_ ? bin_->size() : 0)).push_back('}'); break;
        case Type::Array:
            out.push_back('[');
            for (size_t i = 0; i < arr_.size(); ++i) {
                if (i) out.push_back(',');
                arr_[i].dumpTo(out);
            }
            out.push_back(']');
            break;
        case Type::Object:
            out.push_back('{');
            for (size_t i = 0; i < obj_.size(); ++i) {
                if (i) out.push_back(',');
                quoteTo(out, obj_[i].first);
                out.push_back(':');
                obj_[i].second.dumpTo(out);
            }
            out.push_back('}');
            break;
    }
}

std::string Value::dump() const {
    std::string out;
    dumpTo(out);
    return out;
}

bool Value::operator==(const Value& o) const {
    if (type_ != o.type_) return false;
    switch (type_) {
        case Type::Null: return true;
        case Type::Bool: return b_ == o.b_;
        case Type::Number: return num_ == o.num_;
        case Type::String: return s_ == o.s_;
        case Type::Binary: return *bin_ == *o.bin_;
        case Type::Array: return arr_ == o.arr_;
        case Type::Object: return obj_ == o.obj_;
    }
    return false;
}

namespace {

// The number grammar of RFC 8259, shared by the parser and isNumberText. Advances p past
// the number; on failure p is left where the text stopped being a number.
bool scanNumber(std::string_view t, size_t& p) {
    auto digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
    if (p < t.size() && t[p] == '-') ++p;
    if (!digit(p)) return false;
    if (t[p] == '0') ++p;
    else while (digit(p)) ++p;
    if (p < t.size() && t[p] == '.') {
        ++p;
        if (!digit(p)) return false;
        while (digit(p)) ++p;
    }
    if (p < t.size() && (t[p] == 'e' || t[p] == 'E')) {
        ++p;
        if (p < t.size() && (t[p] == '+' || t[p] == '-')) ++p;
        if (!digit(p)) return false;
        while (digit(p)) ++p;
    }
    return true;
}

class Parser {
public:
    Parser(std::string_view t, ParseLimits l) : t_(t), lim_(l) {}

    Value parseDocument() {
        if (t_.size() > lim_.maxLength) fail("document too large");
        ws();
        if (p_ >= t_.size()) fail("empty JSON document");
        Value v = value(0);
        ws();
        if (p_ != t_.size()) fail("unexpected " + describe() + " after the JSON document");
        return v;
    }

private:
    std::string_view t_;
    ParseLimits lim_;
    size_t p_ = 0;

    [[noreturn]] void fail(const std::string& m) {
        int line = 1, column = 1;
        for (size_t i = 0; i < p_ && i < t_.size(); ++i) {
            if (t_[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        throw ParseError(m, p_, line, column);
    }
    // The character the parser stopped at, for "unexpected ..." (the usual slips named).
    std::string describe() const {
        if (p_ >= t_.size()) return "end of input";
        char c = t_[p_];
        if (c == '#') return "'#' (comments are not allowed in JSON)";
        if (c == '\'') return "\"'\" (JSON strings use double quotes)";
        if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
        return "byte " + std::to_string(static_cast<unsigned char>(c));
    }
    [[noreturn]] void unexpected(const char* expected) { fail("unexpected " + describe() + ", expected " + expected); }
    void ws() {
        while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
    }
    bool lit(std::string_view w) {
        if (t_.substr(p_, w.size()) == w) {
            p_ += w.size();
            return true;
        }
        return false;
    }

    Value value(size_t depth) {
        if (depth > lim_.maxDepth) fail("nested too deeply");
        if (p_ >= t_.size()) unexpected("a value");
        char c = t_[p_];
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') return Value(string());
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        if (lit("true")) return Value(true);
        if (lit("false")) return Value(false);
        if (lit("null")) return Value();
        unexpected("a value");
    }

    Value object(size_t depth) {
        ++p_;
        Value v = Value::object();
        ws();
        if (p_ < t_.size() && t_[p_] == '}') {
            ++p_;
            return v;
        }
        for (;;) {
            ws();
            if (p_ >= t_.size() || t_[p_] != '"') unexpected("a key in double quotes");
            std::string k = string();
            ws();
            if (p_ >= t_.size() || t_[p_] != ':') unexpected("':'");
            ++p_;
            ws();
            v.asObject().emplace_back(std::move(k), value(depth + 1));
            ws();
            if (p_ < t_.size() && t_[p_] == ',') { ++p_; continue; }
            if (p_ < t_.size() && t_[p_] == '}') { ++p_; return v; }
            unexpected("',' or '}'");
        }
    }

    Value array(size_t depth) {
        ++p_;
        Value v = Value::array();
        ws();
        if (p_ < t_.size() && t_[p_] == ']') {
            ++p_;
            return v;
        }
        for (;;) {
            ws();
            v.push(value(depth + 1));
            ws();
            if (p_ < t_.size() && t_[p_] == ',') { ++p_; continue; }
            if (p_ < t_.size() && t_[p_] == ']') { ++p_; return v; }
            unexpected("',' or ']'");
        }
    }

    Value number() {
        size_t start = p_;
        if (!scanNumber(t_, p_)) fail("invalid number");  // p_ is where it went wrong
        std::string text(t_.substr(start, p_ - start));
        double d = std::strtod(text.c_str(), nullptr);
        return Value::numberText(std::move(text), d);
    }

    unsigned hex4() {
        if (p_ + 4 > t_.size()) fail("invalid \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = t_[p_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
            else fail("invalid \\u escape");
        }
        return v;
    }

    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) out.push_back(static_cast<char>(cp));
        else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }

    std::string string() {
        ++p_;  // opening quote
        std::string out;
        for (;;) {
            if (p_ >= t_.size()) fail("unterminated string");
            unsigned char c = static_cast<unsigned char>(t_[p_]);
            if (c == '"') { ++p_; return out; }
            if (c < 0x20) fail("control character in string");
            if (c != '\\') { out.push_back(static_cast<char>(c)); ++p_; continue; }
            ++p_;
            if (p_ >= t_.size()) fail("unterminated string");
            char e = t_[p_++];
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF && p_ + 6 <= t_.size() && t_[p_] == '\\' && t_[p_ + 1] == 'u') {
                        size_t save = p_;
                        p_ += 2;
                        unsigned lo = hex4();
                        if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        else p_ = save;
                    }
                    utf8(out, cp);
                    break;
                }
                default:
                    --p_;
                    fail(std::string("invalid escape '\\") + e + "'");
            }
        }
    }
};

}  // namespace

bool isNumberText(std::string_view s) {
    size_t p = 0;
    return scanNumber(s, p) && p == s.size();
}

Value parse(std::string_view text, ParseLimits limits) { return Parser(text, limits).parseDocument(); }

bool tryParse(std::string_view text, Value& out, std::string& error, ParseLimits limits) {
    try {
        out = parse(text, limits);
        return true;
    } catch (const ParseError& e) {
        error = e.what();
        return false;
    }
}

}  // namespace sf::json
