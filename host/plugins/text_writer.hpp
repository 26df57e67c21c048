// The host's side of sf_writer: text a plugin hands back as {ptr,len} (a rendered body, a
// token's principal or rejection reason) lands in a std::string, up to a cap the host chose
// (docs/plugin-abi.md, crossing the boundary).
#pragma once
#include <streamfence/plugin.h>

#include <cstddef>
#include <limits>
#include <string>

namespace sf::plugins {

class TextWriter {
public:
    explicit TextWriter(size_t cap = std::numeric_limits<size_t>::max()) : cap_(cap) {
        raw_.struct_size = sizeof raw_;
        raw_.ctx = this;
        raw_.write = &TextWriter::append;
    }
    TextWriter(const TextWriter&) = delete;
    TextWriter& operator=(const TextWriter&) = delete;

    sf_writer* raw() { return &raw_; }
    const std::string& text() const { return text_; }
    std::string take() { return std::move(text_); }
    bool capped() const { return capped_; }

private:
    static void append(void* ctx, const char* data, size_t len) {
        auto* self = static_cast<TextWriter*>(ctx);
        if (!data || len == 0) return;
        size_t room = self->cap_ - self->text_.size();
        if (len > room) {
            len = room;
            self->capped_ = true;
        }
        self->text_.append(data, len);
    }

    sf_writer raw_{};
    size_t cap_;
    std::string text_;
    bool capped_ = false;
};

}  // namespace sf::plugins
