//! The syscall hot path: one guest syscall's round trip through the
//! platform and the Sentry, timed by the guest itself over `iters` calls
//! (so sandbox start-up is not counted).

use benches::{run_guest, run_loop, Runner};
use criterion::{criterion_group, criterion_main, Criterion};

const PLATFORMS: &[&str] = &["systrap", "systrap-nopatch", "ptrace"];

fn bench(c: &mut Criterion) {
    for what in ["getppid", "pipe", "open", "stat", "futex", "getdents", "mmap", "pollpong"] {
        let mut g = c.benchmark_group(what);
        g.sample_size(10);
        g.bench_function("native", |b| b.iter_custom(|iters| run_loop(Runner::Native, what, iters)));
        for p in PLATFORMS {
            g.bench_function(format!("runsc-lite-{p}"), |b| {
                b.iter_custom(|iters| run_loop(Runner::Sandbox(p), what, iters))
            });
        }
        g.finish();
    }
    // Linked dynamically: libc's sites are within reach of systrap's patch
    // trampolines (systrap vs systrap-nopatch).
    let mut g = c.benchmark_group("getppid-dynamic");
    g.sample_size(10);
    g.bench_function("native", |b| {
        b.iter_custom(|iters| run_guest(Runner::Native, "syscall_loop-dyn", "getppid", iters))
    });
    for p in PLATFORMS {
        g.bench_function(format!("runsc-lite-{p}"), |b| {
            b.iter_custom(|iters| run_guest(Runner::Sandbox(p), "syscall_loop-dyn", "getppid", iters))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
