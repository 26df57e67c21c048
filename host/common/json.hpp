// A small JSON value for the control path: strict bounded parser, JSON.stringify-compatible
// output, object keys kept in order, and a Binary type so Socket.IO attachments can sit in
// place of their placeholders. Numbers keep their source text, so a payload round-trips
// byte for byte.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sf::json {

// Where and why a parse failed. what() is "<reason> at offset <offset>"; line and column
// (1-based, bytes) are for messages about files, e.g. config errors.
struct ParseError : std::runtime_error {
    std::string reason;  // e.g. "unexpected ']', expected a value"
    size_t offset;
    int line;
    int column;
    ParseError(std::string why, size_t off, int ln, int col)
        : std::runtime_error(why + " at offset " + std::to_string(off)), reason(std::move(why)), offset(off), line(ln),
          column(col) {}
};

class Value {
public:
    enum class Type { Null, Bool, Number, String, Array, Object, Binary };
    using Object = std::vector<std::pair<std::string, Value>>;
    using Array = std::vector<Value>;

    Value() = default;
    Value(std::nullptr_t) {}
    Value(bool b) : type_(Type::Bool), b_(b) {}
    Value(int v) : Value(static_cast<int64_t>(v)) {}
    Value(int64_t v) : type_(Type::Number), num_(static_cast<double>(v)), s_(std::to_string(v)) {}
    Value(uint64_t v) : type_(Type::Number), num_(static_cast<double>(v)), s_(std::to_string(v)) {}
    Value(double v);
    Value(const char* s) : type_(Type::String), s_(s) {}
    Value(std::string s) : type_(Type::String), s_(std::move(s)) {}
    Value(std::string_view s) : type_(Type::String), s_(s) {}
    Value(Array a) : type_(Type::Array), arr_(std::move(a)) {}
    Value(Object o) : type_(Type::Object), obj_(std::move(o)) {}
    static Value binary(std::string bytes);
    static Value array() { return Value(Array{}); }
    static Value object() { return Value(Object{}); }
    // A number from its JSON text (validated by the caller).
    static Value numberText(std::string text, double v);

    Type type() const { return type_; }
    bool isNull() const { return type_ == Type::Null; }
    bool isBool() const { return type_ == Type::Bool; }
    bool isNumber() const { return type_ == Type::Number; }
    bool isString() const { return type_ == Type::String; }
    bool isArray() const { return type_ == Type::Array; }
    bool isObject() const { return type_ == Type::Object; }
    bool isBinary() const { return type_ == Type::Binary; }

    bool asBool() const { return b_; }
    double asNumber() const { return num_; }
    bool isInteger() const;
    int64_t asInt() const { return static_cast<int64_t>(num_); }
    const std::string& asString() const { return s_; }  // String: text; Number: source text
    const std::string& asBinary() const { return *bin_; }
    const Array& asArray() const { return arr_; }
    Array& asArray() { return arr_; }
    const Object& asObject() const { return obj_; }
    Object& asObject() { return obj_; }

    // Object access: nullptr when absent or not an object.
    const Value* find(std::string_view key) const;
    Value* find(std::string_view key);
    Value& set(std::string key, Value v);  // replaces an existing key in place
    void push(Value v) { arr_.push_back(std::move(v)); }
    size_t size() const { return type_ == Type::Array ? arr_.size() : type_ == Type::Object ? obj_.size() : 0; }

    // Compact JSON, as JSON.stringify would write it. Binary dumps as a placeholder-less
    // {"_binary":N} marker; callers that need attachments extract them first.
    std::string dump() const;
    void dumpTo(std::string& out) const;

    bool operator==(const Value& o) const;
    bool operator!=(const Value& o) const { return !(*this == o); }

private:
    Type type_ = Type::Null;
    bool b_ = false;
    double num_ = 0;
    std::string s_;
    Array arr_;
    Object obj_;
    std::shared_ptr<const std::string> bin_;
};

struct ParseLimits {
    size_t maxDepth = 64;
    size_t maxLength = 64u << 20;
};

// Strict JSON (RFC 8259): one value, optional surrounding whitespace, nothing else.
Value parse(std::string_view text, ParseLimits limits = {});
// Like parse, but returns false and sets error instead of throwing.
bool tryParse(std::string_view text, Value& out, std::string& error, ParseLimits limits = {});

// s is exactly one JSON number (RFC 8259 grammar: no leading '+', zeros or dot).
bool isNumberText(std::string_view s);

// Append s as a JSON string literal (with quotes).
void quoteTo(std::string& out, std::string_view s);
std::string quote(std::string_view s);

}  // namespace sf::json
