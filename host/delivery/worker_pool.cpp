#include "delivery/worker_pool.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/log.hpp"

namespace sf::delivery {

struct WorkerPool::State {
    std::mutex mu;
    std::condition_variable cv;      // tasks or stopping
    std::condition_variable exited;  // a thread left
    std::deque<std::function<void()>> tasks;
    size_t threads = 0, idle = 0;
    bool stopping = false;
};

namespace {

// A thread counts as idle from its start until it takes a task, and again once it is done.
void run(std::shared_ptr<WorkerPool::State> st) {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock<std::mutex> lk(st->mu);
            st->cv.wait(lk, [&] { return st->stopping || !st->tasks.empty(); });
            --st->idle;
            if (st->tasks.empty()) {  // stopping and drained
                --st->threads;
                st->exited.notify_all();
                return;
            }
            task = std::move(st->tasks.front());
            st->tasks.pop_front();
        }
        try {
            task();
        } catch (const std::exception& e) {
            log::error("worker_task_failed", {{"error", e.what()}});
        } catch (...) {
            log::error("worker_task_failed", {{"error", "unknown exception"}});
        }
        std::lock_guard<std::mutex> lk(st->mu);
        ++st->idle;
    }
}

void spawn(const std::shared_ptr<WorkerPool::State>& st) {  // st->mu held
    ++st->threads;
    ++st->idle;
    std::thread([st] { run(st); }).detach();
}

}  // namespace

WorkerPool::WorkerPool(size_t threads, size_t maxThreads, unsigned joinWaitMs)
    : st_(std::make_shared<State>()), maxThreads_(std::max<size_t>(std::max<size_t>(threads, 1), maxThreads)), joinWaitMs_(joinWaitMs) {
    std::lock_guard<std::mutex> lk(st_->mu);
    for (size_t i = 0; i < std::max<size_t>(threads, 1); ++i) spawn(st_);
}

WorkerPool::~WorkerPool() {
    std::unique_lock<std::mutex> lk(st_->mu);
    st_->stopping = true;
    st_->cv.notify_all();
    if (!st_->exited.wait_for(lk, std::chrono::milliseconds(joinWaitMs_), [&] { return st_->threads == 0; }))
        log::warn("worker_threads_abandoned", {{"threads", std::to_string(st_->threads)}, {"queued", std::to_string(st_->tasks.size())}});
}

void WorkerPool::submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lk(st_->mu);
    st_->tasks.push_back(std::move(task));
    // Every thread busy (some may be stuck in a plugin): one more, within the bound.
    if (st_->idle < st_->tasks.size() && st_->threads < maxThreads_) spawn(st_);
    st_->cv.notify_one();
}

size_t WorkerPool::threads() const {
    std::lock_guard<std::mutex> lk(st_->mu);
    return st_->threads;
}

}  // namespace sf::delivery
