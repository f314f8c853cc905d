/* The AMX-BF16 kernel on the real tiles (see gemm_amx_body.h). Called only when the CPU, the OS
 * (XCR0) and Linux's tile-data permission allow it (gemm/isa.h). */
#include "gemm/gemm_internal.h"

#if defined(RSCLIP_GEMM_HAVE_X86)
#define AMX_FN(name) rsclip__gemm_amx_##name
#include "gemm/gemm_amx_body.h"
#else
typedef int rsclip__gemm_amx_unused;
#endif
