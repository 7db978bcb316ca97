/* MKL 2020 takes a slower generic code path on non-Intel CPUs and ignores the documented
   switches (MKL_DEBUG_CPU_TYPE). Its dispatcher asks this internal function whether the
   CPU is Intel; loading this definition first (dlopen RTLD_GLOBAL) makes it choose the AVX2
   kernels the CPU supports. Measured on this project's machines: 1.45x on 2048^2 sgemm,
   1.7-2.7x on the transposed backward shapes (../shared/anchors/README.md). */
int mkl_serv_intel_cpu_true(void) { return 1; }
