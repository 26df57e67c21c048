// A few threads for work that may block (token validators flagged MAY_BLOCK), so no event
// loop ever waits. Tasks run in submission order; results are posted back to the loop by the
// task itself. The pool starts `threads` threads and adds one (up to `maxThreads`) whenever a
// task arrives while every thread is busy, so a few calls stuck in a plugin do not hold up
// the others. Its threads are detached and share the pool's state: the destructor waits a
// bounded time for the running tasks and leaves behind those still stuck (logged), so a hung
// plugin call cannot hang a shutdown.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

namespace sf::delivery {

class WorkerPool {
public:
    explicit WorkerPool(size_t threads = 2, size_t maxThreads = 16, unsigned joinWaitMs = 2000);
    ~WorkerPool();  // runs what is queued, waits up to joinWaitMs for running tasks
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void submit(std::function<void()> task);
    size_t threads() const;  // live threads (tests)

    struct State;

private:
    std::shared_ptr<State> st_;
    size_t maxThreads_;
    unsigned joinWaitMs_;
};

}  // namespace sf::delivery
