/*
 * profiling.h — profile export: after every module ran, the kernel sends
 * over COM1, per module, a JSON summary and (for instrumented modules) the
 * module's raw LLVM profile, each in a frame the host (internal/profile)
 * checks for completeness before it believes a byte of it.
 *
 * Frame format (one frame, lines end in "\n"; the UART adds "\r"):
 *
 *   @@FLUID-FRAME-BEGIN v=1 kind=<kind> module=<name> len=<bytes> crc32=<8 hex>
 *   <payload as base64 (RFC 4648, '=' padded), PROF_B64_LINE chars a line>
 *   @@FLUID-FRAME-END kind=<kind> module=<name>
 *
 *   kind    "summary" (JSON object, every module) or "profraw" (the bytes
 *           compiler-rt's __llvm_profile_write_buffer produced, instrumented
 *           modules only)
 *   len     payload bytes before encoding (decimal)
 *   crc32   CRC-32 IEEE of the payload (as Go's crc32.ChecksumIEEE), lower hex
 *
 * A payload that could not be produced is reported instead as
 *   @@FLUID-FRAME-ERROR kind=<kind> module=<name> reason=<text to end of line>
 * and after the last module the kernel prints
 *   @@FLUID-FRAMES-DONE frames=<frames sent> errors=<error lines sent>
 * so a capture that stops early is recognisably truncated.
 */
#ifndef FLUID_PROFILING_H
#define FLUID_PROFILING_H

#include <stddef.h>
#include <stdint.h>

#define PROF_FRAME_VERSION 1
#define PROF_B64_LINE      76  /* base64 characters per payload line */
#define PROF_KIND_SUMMARY  "summary"
#define PROF_KIND_PROFRAW  "profraw"

/* Where frame text goes: write(ctx, s, n). The export uses COM1; tests use
 * a memory buffer. */
struct prof_sink {
	void (*write)(void *ctx, const char *s, size_t n);
	void *ctx;
};

/* Base64-encodes n bytes into dst (which must hold PROF_B64_LEN(n) bytes;
 * no NUL is written). Returns the number of characters written. */
#define PROF_B64_LEN(n) ((((n) + 2u) / 3u) * 4u)
size_t prof_base64_encode(char *dst, const uint8_t *src, size_t n);

/* Writes one complete frame for payload[0..len). */
void prof_frame_write(const struct prof_sink *sink, const char *kind, const char *module,
		      const void *payload, size_t len);
/* Writes one @@FLUID-FRAME-ERROR line. */
void prof_frame_error(const struct prof_sink *sink, const char *kind, const char *module,
		      const char *reason);

/* Builds the summary frames (and profraw frames for modules that carry a
 * profile hook) for every module record and writes them to COM1, then the
 * FRAMES-DONE line. Returns the number of payloads that could not be
 * produced (each already reported with a FRAME-ERROR line); 0 = all sent. */
int profiling_export(void);

/* The one entry point the workload calls after all modules ran; it runs
 * profiling_export(). Never inlined: gdb users break on it
 * (`break profiling_trigger_export`) to inspect the records before export. */
int profiling_trigger_export(void);

#endif
