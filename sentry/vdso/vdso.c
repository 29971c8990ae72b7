/* The guest's vDSO: clock_gettime, gettimeofday, time, getcpu and
 * clock_getres without a trap into the Sentry.
 *
 * Time comes from the TSC, converted with parameters the Sentry publishes
 * in the vvar page (mapped read-only one page below this image) under a
 * sequence lock. The Sentry's own clock_gettime uses the same parameters,
 * so a guest sees one clock whichever way it asks. When the parameters
 * are not valid (yet), or for other clocks, the real syscall is made.
 *
 * Built with -nostdlib -fPIC into a shared object with no relocations
 * (see build.rs); keep it free of global data other than `vvar`.
 */
#include <stdint.h>

/* Must match sentry/src/vdso.rs (VvarData). */
struct vvar_data {
    uint32_t seq;     /* odd while the Sentry updates */
    uint32_t enabled; /* 0: use the syscall */
    uint64_t tsc_base;
    uint64_t mono_base; /* CLOCK_MONOTONIC at tsc_base, ns */
    uint64_t real_base; /* CLOCK_REALTIME at tsc_base, ns */
    uint64_t mult;      /* ns = (tsc - tsc_base) * mult >> shift */
    uint32_t shift;
    uint32_t pad;
};

extern const volatile struct vvar_data vvar __attribute__((visibility("hidden")));

struct timespec_k {
    int64_t tv_sec;
    int64_t tv_nsec;
};
struct timeval_k {
    int64_t tv_sec;
    int64_t tv_usec;
};
struct timezone_k {
    int tz_minuteswest;
    int tz_dsttime;
};

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

static inline long sys3(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static inline uint64_t rdtsc_ordered(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds of CLOCK_MONOTONIC (real = 0) or CLOCK_REALTIME (real = 1);
 * 0 if the parameters are not valid. */
static uint64_t read_ns(int real)
{
    for (;;) {
        uint32_t seq = vvar.seq;
        __asm__ volatile("" ::: "memory");
        if (seq & 1)
            continue;
        if (!vvar.enabled)
            return 0;
        uint64_t tsc_base = vvar.tsc_base, mult = vvar.mult;
        uint32_t shift = vvar.shift;
        uint64_t base = real ? vvar.real_base : vvar.mono_base;
        uint64_t t = rdtsc_ordered();
        __asm__ volatile("" ::: "memory");
        if (vvar.seq != seq)
            continue;
        uint64_t d = t > tsc_base ? t - tsc_base : 0;
        return base + (uint64_t)(((unsigned __int128)d * mult) >> shift);
    }
}

int __vdso_clock_gettime(int clk, struct timespec_k *ts)
{
    int real;
    switch (clk) {
    case 0: /* REALTIME */
    case 5: /* REALTIME_COARSE */
        real = 1;
        break;
    case 1: /* MONOTONIC */
    case 4: /* MONOTONIC_RAW */
    case 6: /* MONOTONIC_COARSE */
    case 7: /* BOOTTIME */
        real = 0;
        break;
    default:
        return sys3(SYS_clock_gettime, clk, (long)ts, 0);
    }
    uint64_t ns = read_ns(real);
    if (!ns)
        return sys3(SYS_clock_gettime, clk, (long)ts, 0);
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    return 0;
}

int __vdso_gettimeofday(struct timeval_k *tv, struct timezone_k *tz)
{
    uint64_t ns = read_ns(1);
    if (!ns)
        return sys3(SYS_gettimeofday, (long)tv, (long)tz, 0);
    if (tv) {
        tv->tv_sec = ns / 1000000000;
        tv->tv_usec = ns % 1000000000 / 1000;
    }
    if (tz) {
        tz->tz_minuteswest = 0;
        tz->tz_dsttime = 0;
    }
    return 0;
}

int64_t __vdso_time(int64_t *t)
{
    uint64_t ns = read_ns(1);
    if (!ns)
        return sys3(SYS_time, (long)t, 0, 0);
    int64_t s = ns / 1000000000;
    if (t)
        *t = s;
    return s;
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
{
    return sys3(SYS_getcpu, (long)cpu, (long)node, (long)cache);
}

int __vdso_clock_getres(int clk, struct timespec_k *res)
{
    return sys3(SYS_clock_getres, clk, (long)res, 0);
}

int clock_gettime(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_k *, struct timezone_k *) __attribute__((weak, alias("__vdso_gettimeofday")));
int64_t time(int64_t *) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_getres")));
