// W3C trace context (https://www.w3.org/TR/trace-context/) at the edge: every invocation joins
// the caller's trace or starts one, and the function sees the result as its traceparent header.
#pragma once

#include <string>

namespace faas::gateway {

// `incoming` continued with a new parent id when it is a valid version-00 traceparent, else a
// new trace (sampled flag off). Returns the header to pass on; *trace_id gets its 32 hex digits.
std::string ContinueTrace(const std::string* incoming, std::string* trace_id);

}  // namespace faas::gateway
