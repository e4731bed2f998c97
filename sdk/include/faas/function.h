/* faas function ABI (stable C interface). See docs/sdk.md.
 *
 * A function is a shared library that exports faas_handle (and optionally faas_init), built with
 * nothing but this header:
 *
 *   #include <faas/function.h>
 *   FAAS_FUNCTION_ABI
 *   int faas_handle(const faas_request *req, faas_response *res) {
 *     faas_response_write(res, "hi\n", 3);
 *     return 0;
 *   }
 *
 *   cc -shared -fPIC -I sdk/include hello.c -o libhello.so
 *
 * The faas_response_* and faas_request_header functions are supplied by the worker process that
 * loads the library; no platform library is linked. Strings in faas_request are NOT
 * NUL-terminated and stay valid only during the faas_handle call.
 */
#ifndef FAAS_FUNCTION_H_
#define FAAS_FUNCTION_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FAAS_ABI_VERSION 1u

#if defined(__GNUC__)
#define FAAS_EXPORT __attribute__((visibility("default")))
#else
#define FAAS_EXPORT
#endif

typedef struct {
  const char* data;
  size_t len;
} faas_str; /* not NUL-terminated */
typedef struct {
  faas_str name, value;
} faas_header;
typedef struct faas_request {
  faas_str method, path, query, body, invocation_id;
  const faas_header* headers;
  size_t header_count;        /* names lower-cased */
  faas_str trigger;           /* "http", "async" or "queue" */
  faas_str queue, message_id; /* queue triggers only; empty otherwise */
  uint32_t attempt;           /* delivery attempt, 1-based */
  int64_t deadline_unix_ms;   /* wall-clock deadline of this invocation */
} faas_request;
typedef struct faas_response faas_response; /* opaque, owned by the worker */

/* All return 0 on success, -1 on error (bad argument, or the response limit was passed). */
int faas_response_set_status(faas_response* res, int status); /* default 200; 200..599 */
int faas_response_set_header(faas_response* res, const char* name, const char* value);
int faas_response_write(faas_response* res, const void* data,
                        size_t len); /* appends; fails past the limit */
/* Case-insensitive lookup; NULL if absent. The pointer lives as long as the request. */
const faas_str* faas_request_header(const faas_request* req, const char* name);

/* Exported by the function library. */
FAAS_EXPORT int faas_handle(const faas_request* req,
                            faas_response* res); /* required; non-zero = error */
FAAS_EXPORT int faas_init(void);                 /* optional; non-zero fails the instance */

#ifdef __cplusplus
}
#define FAAS_ABI_LINKAGE_ extern "C"
#else
#define FAAS_ABI_LINKAGE_
#endif

/* Put exactly once in the library: the worker refuses a library built for another ABI. */
#define FAAS_FUNCTION_ABI                                                               \
  FAAS_ABI_LINKAGE_ FAAS_EXPORT __attribute__((used)) const uint32_t faas_abi_version = \
      FAAS_ABI_VERSION;

#endif /* FAAS_FUNCTION_H_ */
