// json_string (core/json_string.h): the escaping the hand-written JSON of the tools relies on.
#include <string>

#include "core/json_string.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(json_string_escapes) {
  check_true("plain text is only quoted", json_string("H100 80GB") == "\"H100 80GB\"");
  check_true("quotes and backslashes are escaped", json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  check_true("control characters become \\u00XX", json_string("x\ny\t\x01") == "\"x\\u000ay\\u0009\\u0001\"");
  check_true("UTF-8 bytes pass through", json_string("\xc3\xa9") == "\"\xc3\xa9\"");
  check_true("the empty string", json_string("") == "\"\"");
}

}  // namespace vr::test
