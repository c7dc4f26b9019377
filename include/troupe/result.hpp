// troupe::error and troupe::result<T>: runtime failures travel as values.
//
// Programmer errors abort (TROUPE_ASSERT); failures caused by input -- a malformed file, a bad
// parameter, an unknown token type -- are returned as `error`, whose message is written for the
// person who has to fix the input ("file.gguf: tensor 'x' data ends past end of file (...)").
// We do not use exceptions across module or actor boundaries; this type is what crosses them.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace troupe {

struct error {
  std::string message;
};

// A value or an error. Deliberately tiny: std::expected is C++23 and we build as C++20.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  result(error err) : v_(std::move(err)) {}            // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const error& err() const { return std::get<1>(v_); }
  const std::string& message() const { return err().message; }

 private:
  std::variant<T, error> v_;
};

// result<void>: success or an error.
class [[nodiscard]] status {
 public:
  status() = default;
  status(error err) : err_(std::move(err)), ok_(false) {}  // NOLINT: implicit by design
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return err_.message; }
  const error& err() const { return err_; }

 private:
  error err_;
  bool ok_ = true;
};

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "troupe: assertion failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace troupe

// For programmer errors only (broken invariants), never for bad input. Always on.
#define TROUPE_ASSERT(cond) \
  ((cond) ? (void)0 : ::troupe::assert_fail(#cond, __FILE__, __LINE__))
