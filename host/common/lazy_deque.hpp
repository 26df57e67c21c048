// A std::deque that allocates nothing until the first push. libstdc++'s deque allocates its
// map and a 512-byte chunk even when empty, and most per-connection queues (a lane nobody
// publishes to, the events deferred behind an async token check) stay empty for the whole
// connection: with 10k idle connections that was ~0.6 KB each, per queue. Once used, the
// deque is kept (queues that churn must not pay an allocation per message).
#pragma once
#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

namespace sf {

template <class T>
class LazyDeque {
public:
    bool empty() const { return !q_ || q_->empty(); }
    size_t size() const { return q_ ? q_->size() : 0; }
    T& operator[](size_t i) { return (*q_)[i]; }
    const T& operator[](size_t i) const { return (*q_)[i]; }
    T& front() { return q_->front(); }
    void push_back(T v) { get().push_back(std::move(v)); }
    void pop_front() { q_->pop_front(); }
    void eraseAt(size_t i) { q_->erase(q_->begin() + static_cast<std::ptrdiff_t>(i)); }
    void clear() { q_.reset(); }
    // Moves everything out (the storage goes with it).
    std::deque<T> takeAll() {
        std::deque<T> out;
        if (q_) out.swap(*q_);
        q_.reset();
        return out;
    }

private:
    std::deque<T>& get() {
        if (!q_) q_ = std::make_unique<std::deque<T>>();
        return *q_;
    }
    std::unique_ptr<std::deque<T>> q_;
};

}  // namespace sf
