// pool/job.hpp - Job: one unit of work, a move-only type-erased callable run as job(stop_token).
// Owns its callable and whatever the callable owns; knows nothing of queues, threads or sockets.
#pragma once

#include <cstddef>
#include <new>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace okserve::pool {

// A Job is 64 bytes: 56 bytes of inline storage and one pointer to a table of three
// functions. Callables that fit (a lambda capturing a few pointers, an Fd, a small
// struct) live inline, so submitting one allocates nothing; bigger ones go to the heap.
//
// The callable may be invocable as f(std::stop_token) or as f(). It may return void
// (success unless it throws) or bool (false means "failed"); the pool counts both.
// A Job that never runs destroys its callable in ~Job(), so a dropped job releases what
// it owns (an fd, a promise) instead of leaking it.
class Job {
public:
    static constexpr std::size_t inline_size = 56;
    static constexpr std::size_t inline_align = alignof(void*);

    Job() noexcept = default;

    template <class F, class D = std::decay_t<F>, class = std::enable_if_t<!std::is_same_v<D, Job>>>
    Job(F&& f) : ops_(&ops_for<D>) {  // NOLINT: implicit by design, like std::function
        static_assert(std::is_invocable_v<D&, std::stop_token> || std::is_invocable_v<D&>,
                      "a Job callable is invoked as f(std::stop_token) or f()");
        if constexpr (fits_inline<D>) {
            ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
        } else {
            D* heap = new D(std::forward<F>(f));
            ::new (static_cast<void*>(storage_)) D*(heap);
        }
    }

    Job(Job&& other) noexcept : ops_(other.ops_) {
        if (ops_ != nullptr) {
            ops_->relocate(storage_, other.storage_);
            other.ops_ = nullptr;
        }
    }

    Job& operator=(Job&& other) noexcept {
        if (this != &other) {
            reset();
            if (other.ops_ != nullptr) {
                other.ops_->relocate(storage_, other.storage_);
                ops_ = std::exchange(other.ops_, nullptr);
            }
        }
        return *this;
    }

    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;
    ~Job() { reset(); }

    explicit operator bool() const noexcept { return ops_ != nullptr; }

    // Runs the callable; true means success. Exceptions from the callable pass through:
    // the worker catches them at the job boundary. Precondition: *this is not empty.
    // The token goes by reference: a copy costs an atomic increment on a count that every
    // worker shares, and callables that ignore it should not pay for that.
    bool operator()(const std::stop_token& stop) { return ops_->invoke(storage_, stop); }

    // Destroys the callable now (and what it owns); the Job becomes empty.
    void reset() noexcept {
        if (ops_ != nullptr) {
            std::exchange(ops_, nullptr)->destroy(storage_);
        }
    }

private:
    struct Ops {
        bool (*invoke)(void* self, const std::stop_token& stop);
        void (*relocate)(void* to, void* from) noexcept;  // move-construct into `to`, destroy `from`
        void (*destroy)(void* self) noexcept;
    };

    template <class D>
    static constexpr bool fits_inline = sizeof(D) <= inline_size &&
                                        alignof(D) <= inline_align&& std::is_nothrow_move_constructible_v<D>;

    template <class D>
    static D& target(void* self) noexcept {
        if constexpr (fits_inline<D>) {
            return *std::launder(static_cast<D*>(self));
        } else {
            return **std::launder(static_cast<D**>(self));
        }
    }

    template <class D>
    static bool invoke_as(void* self, const std::stop_token& stop) {
        D& f = target<D>(self);
        if constexpr (std::is_invocable_v<D&, std::stop_token>) {
            return finish(f, stop);
        } else {
            return finish(f);
        }
    }

    template <class D, class... A>
    static bool finish(D& f, A&&... a) {
        using R = std::invoke_result_t<D&, A...>;
        if constexpr (std::is_same_v<R, bool>) {
            return f(std::forward<A>(a)...);
        } else {
            f(std::forward<A>(a)...);
            return true;
        }
    }

    template <class D>
    static void relocate_as(void* to, void* from) noexcept {
        if constexpr (fits_inline<D>) {
            D* src = std::launder(static_cast<D*>(from));
            ::new (to) D(std::move(*src));
            src->~D();
        } else {
            ::new (to) D*(*std::launder(static_cast<D**>(from)));  // the pointer moves, not D
        }
    }

    template <class D>
    static void destroy_as(void* self) noexcept {
        if constexpr (fits_inline<D>) {
            std::launder(static_cast<D*>(self))->~D();
        } else {
            delete *std::launder(static_cast<D**>(self));
        }
    }

    template <class D>
    static constexpr Ops ops_for{&invoke_as<D>, &relocate_as<D>, &destroy_as<D>};

    alignas(inline_align) unsigned char storage_[inline_size];
    const Ops* ops_ = nullptr;
};

static_assert(std::is_nothrow_move_constructible_v<Job>, "a queued Job must move without throwing");
static_assert(std::is_nothrow_move_assignable_v<Job>);
static_assert(sizeof(Job) == 64, "one Job, one cache line: 56 bytes inline + the ops pointer");
static_assert(Job::inline_size >= 48);

}  // namespace okserve::pool
