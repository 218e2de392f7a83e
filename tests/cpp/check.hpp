// A minimal test runner without dependencies: cases register themselves,
// CHECK records a failure with file, line and the values, main runs the cases
// (all, or those whose name contains argv[1]) and exits non-zero on a failure.
#pragma once
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace httest {

struct Case {
  const char* name;
  std::function<void()> body;
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

inline int& failures() {
  static int count = 0;
  return count;
}

struct Register {
  Register(const char* name, std::function<void()> body) { cases().push_back({name, std::move(body)}); }
};

// Prints the failure; a case keeps going so one run shows every wrong value.
inline void report(const char* file, int line, const std::string& what) {
  if (++failures() <= 20) std::printf("  %s:%d: %s\n", file, line, what.c_str());
}

template <class A, class B>
std::string show_pair(const char* ea, const char* eb, const A& a, const B& b) {
  std::ostringstream os;
  os << ea << " == " << eb << " failed: " << a << " != " << b;
  return os.str();
}

}  // namespace httest

#define HT_CONCAT2(a, b) a##b
#define HT_CONCAT(a, b) HT_CONCAT2(a, b)
#define TEST_CASE(name)                                                         \
  static void HT_CONCAT(test_body_, __LINE__)();                               \
  static httest::Register HT_CONCAT(test_reg_, __LINE__)(name, HT_CONCAT(test_body_, __LINE__)); \
  static void HT_CONCAT(test_body_, __LINE__)()

#define CHECK(cond)                                                 \
  do {                                                              \
    if (!(cond)) httest::report(__FILE__, __LINE__, "CHECK(" #cond ") failed"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                  \
  do {                                                                                  \
    const auto ht_a_ = (a);                                                             \
    const auto ht_b_ = (b);                                                             \
    if (!(ht_a_ == ht_b_)) httest::report(__FILE__, __LINE__, httest::show_pair(#a, #b, ht_a_, ht_b_)); \
  } while (0)

#define CHECK_THROWS(expr)                                                             \
  do {                                                                                 \
    bool ht_threw_ = false;                                                            \
    try {                                                                              \
      (void)(expr);                                                                    \
    } catch (const std::exception&) {                                                  \
      ht_threw_ = true;                                                                \
    }                                                                                  \
    if (!ht_threw_) httest::report(__FILE__, __LINE__, #expr " did not throw");        \
  } while (0)
