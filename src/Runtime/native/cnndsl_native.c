/* Flush-to-zero and denormals-are-zero for the calling thread (MXCSR bits 15 and 6).
   Trained weights and activations drift into denormal floats, which some CPUs process
   20-50x slower (pytorch#19651); .NET has no API for MXCSR, hence this one function. */
#include <xmmintrin.h>
void cnndsl_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
