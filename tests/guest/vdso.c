/* The vDSO: present (AT_SYSINFO_EHDR), exporting the calls glibc looks for
 * with version LINUX_2.6, and its clocks consistent with the syscalls. */
#include "common.h"
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>

/* Find a dynamic symbol in the vDSO image (as the kernel's parse_vdso). */
static void *vdso_sym(const char *name)
{
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    if (!base) return 0;
    Elf64_Ehdr *eh = (Elf64_Ehdr *)base;
    Elf64_Phdr *ph = (Elf64_Phdr *)(base + eh->e_phoff);
    uintptr_t load = 0;
    Elf64_Dyn *dyn = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) load = base + ph[i].p_offset - ph[i].p_vaddr;
        if (ph[i].p_type == PT_DYNAMIC) dyn = (Elf64_Dyn *)(base + ph[i].p_offset);
    }
    if (!dyn) return 0;
    Elf64_Sym *sym = 0;
    const char *str = 0;
    Elf32_Word *hash = 0;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB) sym = (Elf64_Sym *)(load + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_STRTAB) str = (const char *)(load + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_HASH) hash = (Elf32_Word *)(load + dyn->d_un.d_ptr);
    }
    if (!sym || !str || !hash) return 0;
    for (Elf32_Word i = 0; i < hash[1]; i++)
        if (sym[i].st_name && strcmp(str + sym[i].st_name, name) == 0 && sym[i].st_shndx != SHN_UNDEF)
            return (void *)(load + sym[i].st_value);
    return 0;
}

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

/* Readings through libc (vDSO) and the raw syscall, interleaved, never go
 * backwards. */
static int monotone(clockid_t c, int n)
{
    struct timespec a, b;
    clock_gettime(c, &a);
    for (int i = 0; i < n; i++) {
        if (i % 7 == 0)
            syscall(SYS_clock_gettime, c, &b);
        else
            clock_gettime(c, &b);
        if (ns(b) < ns(a)) return 0;
        a = b;
    }
    return 1;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    B("at_sysinfo_ehdr", getauxval(AT_SYSINFO_EHDR) != 0);
    const char *names[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu",
                           "__vdso_clock_getres"};
    for (int i = 0; i < 5; i++) printf("symbol %s %s\n", names[i], vdso_sym(names[i]) ? "yes" : "no");
    int (*cg)(clockid_t, struct timespec *) = vdso_sym("__vdso_clock_gettime");
    struct timespec v, s;
    if (cg) {
        V("vdso_clock_gettime_call", cg(CLOCK_MONOTONIC, &v));
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &s);
        B("vdso_then_syscall_ordered", ns(s) >= ns(v));
        V("vdso_other_clock", cg(CLOCK_PROCESS_CPUTIME_ID, &v));
        printf("vdso_bad_clock %d\n", cg(12345, &v));
    }
    /* Long enough to straddle the Sentry's calibration. */
    usleep(30000);
    B("monotonic_monotone", monotone(CLOCK_MONOTONIC, 200000));
    B("boottime_monotone", monotone(CLOCK_BOOTTIME, 20000));
    B("monotonic_raw_monotone", monotone(CLOCK_MONOTONIC_RAW, 20000));
    B("monotonic_coarse_monotone", monotone(CLOCK_MONOTONIC_COARSE, 20000));
    B("realtime_monotone", monotone(CLOCK_REALTIME, 20000));
    struct timeval tv;
    struct timespec r;
    T("gettimeofday", gettimeofday(&tv, 0));
    clock_gettime(CLOCK_REALTIME, &r);
    long long d = ns(r) - (tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL);
    /* Upper bounds: the same clock, not the same instant (we may be off
     * the CPU in between); time() reads the coarse clock, a tick behind. */
    B("gettimeofday_agrees", d >= 0 && d < 10000000000LL);
    time_t t = time(0);
    B("time_agrees", t >= tv.tv_sec - 1 && t <= tv.tv_sec + 10);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec ten = {0, 10000000};
    nanosleep(&ten, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    B("nanosleep_10ms_advances_10ms", ns(b) - ns(a) >= 10000000);
    unsigned cpu = 99;
    T("getcpu", syscall(SYS_getcpu, &cpu, 0, 0));
    /* The vDSO is the process's own mapping, but one copy for everyone:
     * no write access (Linux refuses it for vvar too). */
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    if (base) {
        E("mprotect_vvar_writable", mprotect((void *)(base - 4096), 4096, PROT_READ | PROT_WRITE), EACCES);
    }
    printf("done\n");
    return 0;
}
