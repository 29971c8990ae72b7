//! Path resolution over a realistic sandbox: an overlay root (read-only
//! host directory below, tmpfs above) with a tmpfs mounted at /tmp and a
//! devfs at /dev. Escapes through symlinks and ".." must stay inside.

use abi::flags::{O_RDONLY, O_RDWR, O_WRONLY, S_IFREG};
use abi::Errno;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use vfs::devfs::DevFs;
use vfs::hostfs::HostFs;
use vfs::overlay::Overlay;
use vfs::tmpfs::TmpFs;
use vfs::{Creds, DentryRef, Follow, Interrupt, IoCtx, MountFlags, MountNamespace};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = PathBuf::from("/tmp").join(format!(
            "vfs-it-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            vfs::now().1
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SANDBOX_PASSWD: &[u8] = b"sandbox:x:0:0::/:/bin/sh\n";

/// The host tree that becomes the sandbox's read-only lower layer.
fn rootfs() -> TempDir {
    let td = TempDir::new("root");
    let r = &td.0;
    for d in ["etc", "bin", "dir/sub", "tmp", "dev"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("etc/passwd"), SANDBOX_PASSWD).unwrap();
    std::fs::write(r.join("bin/sh"), b"#!fake shell\n").unwrap();
    let ln = |t: &str, at: &str| std::os::unix::fs::symlink(t, r.join(at)).unwrap();
    ln("../../../../etc/passwd", "escape_rel");
    ln("/etc/passwd", "escape_abs");
    ln("../../../../../../../etc/passwd", "dir/sub/deep_rel");
    ln("/../../..", "up");
    ln("loop2", "loop1");
    ln("loop1", "loop2");
    ln("selfloop", "selfloop");
    ln("/proc/self/root/etc/passwd", "via_proc");
    ln("/etc", "etc_link");
    td
}

struct Sandbox {
    td: TempDir,
    ns: Arc<MountNamespace>,
    root: DentryRef,
}

fn sandbox() -> Sandbox {
    let td = rootfs();
    let lower = HostFs::new_root(&td.0, true).unwrap();
    let upper = TmpFs::new_root(0o755, 0, 0);
    let ns = MountNamespace::new("overlay", "rootfs", Overlay::new(lower, upper), MountFlags::default());
    ns.mount(b"/tmp", "tmpfs", "none", TmpFs::new_root(0o1777, 0, 0), MountFlags::default());
    ns.mount(b"/dev", "tmpfs", "none", DevFs::new_root(), MountFlags::default());
    let root = ns.root();
    Sandbox { td, ns, root }
}

impl Sandbox {
    fn resolve(&self, path: &str) -> Result<DentryRef, Errno> {
        self.ns.resolve(&self.root, &self.root, path.as_bytes(), Follow::Yes, &Creds::root())
    }

    fn resolve_from(&self, cwd: &DentryRef, path: &str) -> Result<DentryRef, Errno> {
        self.ns.resolve(&self.root, cwd, path.as_bytes(), Follow::Yes, &Creds::root())
    }
}

fn ctx(irq: &Interrupt) -> IoCtx<'_> {
    IoCtx { flags: 0, interrupt: irq }
}

fn read_all(d: &DentryRef) -> Vec<u8> {
    let irq = Interrupt::default();
    let f = d.inode.open(O_RDONLY).unwrap();
    let mut out = Vec::new();
    let mut b = vec![0u8; 4096];
    loop {
        let n = f.read(&ctx(&irq), &mut b, out.len() as u64).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[..n]);
    }
    out
}

#[test]
fn symlinks_and_dotdot_stay_inside() {
    let sb = sandbox();
    let inside = std::fs::metadata(sb.td.0.join("etc/passwd")).unwrap().ino();
    for p in [
        "/etc/passwd",
        "/escape_rel",
        "/escape_abs",
        "/dir/sub/deep_rel",
        "/../../../etc/passwd",
        "/etc/../../../../etc/passwd",
        "/up/etc/passwd",
        "/etc_link/passwd",
        "/etc_link/../etc_link/passwd",
        "escape_rel",
        "../etc/passwd",
    ] {
        let d = sb.resolve(p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        assert_eq!(d.inode.stat().unwrap().st_ino, inside, "{p}");
        assert_eq!(read_all(&d), SANDBOX_PASSWD, "{p}");
        assert_eq!(d.path(), b"/etc/passwd", "{p}");
    }
    // Relative to a working directory deep inside.
    let cwd = sb.resolve("/dir/sub").unwrap();
    for p in ["deep_rel", "../../etc/passwd", "../../../../../etc/passwd", "../../escape_abs"] {
        let d = sb.resolve_from(&cwd, p).unwrap();
        assert_eq!(d.inode.stat().unwrap().st_ino, inside, "{p}");
    }
    // ".." at the root is the root.
    let up = sb.resolve("/..").unwrap();
    assert_eq!(up.path(), b"/");
    assert!(Arc::ptr_eq(&up.inode, &sb.root.inode));
    let up = sb.resolve("/up").unwrap();
    assert_eq!(up.path(), b"/");
    // /proc is not mounted here: no way out through it either.
    assert_eq!(sb.resolve("/via_proc").err(), Some(Errno::ENOENT));
    // Loops.
    assert_eq!(sb.resolve("/loop1").err(), Some(Errno::ELOOP));
    assert_eq!(sb.resolve("/selfloop").err(), Some(Errno::ELOOP));
    assert_eq!(sb.resolve("/loop1/x").err(), Some(Errno::ELOOP));
    // Not following the last component gives the link itself.
    let l = sb.ns.resolve(&sb.root, &sb.root, b"/escape_abs", Follow::No, &Creds::root()).unwrap();
    assert_eq!(l.inode.readlink().unwrap(), b"/etc/passwd");
    assert_eq!(sb.resolve("/etc/passwd/").err(), Some(Errno::ENOTDIR));
}

#[test]
fn tmpfs_and_devfs_mounts() {
    let sb = sandbox();
    let c = Creds::new(1000, 1000, vec![]);
    let (tmp, name) = sb.ns.resolve_parent(&sb.root, &sb.root, b"/tmp/file", &c).unwrap();
    let name = name.unwrap();
    assert_eq!(tmp.mount.fs_type, "tmpfs");
    let f = tmp.inode.create(&name, S_IFREG | 0o600, &c).unwrap();
    let irq = Interrupt::default();
    f.open(O_WRONLY).unwrap().write(&ctx(&irq), b"in tmpfs", 0).unwrap();
    let d = sb.resolve("/tmp/file").unwrap();
    assert_eq!(read_all(&d), b"in tmpfs");
    assert_eq!(d.inode.stat().unwrap().st_uid, 1000);
    assert!(!sb.td.0.join("tmp/file").exists());
    // ".." out of a mount goes back to the parent mount.
    let back = sb.resolve("/tmp/../etc/passwd").unwrap();
    assert_eq!(read_all(&back), SANDBOX_PASSWD);
    // /dev/null through the mount.
    let null = sb.resolve("/dev/null").unwrap();
    assert_eq!(null.inode.stat().unwrap().st_rdev, vfs::makedev(1, 3));
    assert_eq!(null.inode.open(O_RDWR).unwrap().write(&ctx(&irq), b"gone", 0), Ok(4));
    // /dev/stdout points at /proc/self/fd/1, which is not mounted here.
    assert_eq!(sb.resolve("/dev/stdout").err(), Some(Errno::ENOENT));
}

#[test]
fn overlay_copy_up_and_whiteouts() {
    let sb = sandbox();
    let irq = Interrupt::default();
    let host_passwd = sb.td.0.join("etc/passwd");
    // Writing through the overlay copies up; the host file is untouched.
    let d = sb.resolve("/escape_rel").unwrap();
    let f = d.inode.open(O_RDWR).unwrap();
    f.write(&ctx(&irq), b"SANDBOX", 0).unwrap();
    assert_eq!(std::fs::read(&host_passwd).unwrap(), SANDBOX_PASSWD);
    let again = sb.resolve("/etc/passwd").unwrap();
    assert!(read_all(&again).starts_with(b"SANDBOX:x"));
    // Unlinking a lower file leaves a whiteout.
    let (bin, name) = sb.ns.resolve_parent(&sb.root, &sb.root, b"/bin/sh", &Creds::root()).unwrap();
    bin.inode.unlink(&name.unwrap()).unwrap();
    assert_eq!(sb.resolve("/bin/sh").err(), Some(Errno::ENOENT));
    assert!(bin.inode.readdir().unwrap().is_empty());
    assert!(sb.td.0.join("bin/sh").exists());
    // New files live in the upper layer only.
    let (etc, _) = sb.ns.resolve_parent(&sb.root, &sb.root, b"/etc/hosts", &Creds::root()).unwrap();
    etc.inode.create(b"hosts", S_IFREG | 0o644, &Creds::root()).unwrap();
    assert!(sb.resolve("/etc/hosts").is_ok());
    assert!(!sb.td.0.join("etc/hosts").exists());
}

#[test]
fn readonly_hostfs_is_erofs() {
    let td = rootfs();
    let ro = HostFs::new_root(&td.0, true).unwrap();
    let ns = MountNamespace::new("bind", "rootfs", ro, MountFlags { readonly: true, ..Default::default() });
    let root = ns.root();
    let c = Creds::root();
    let (parent, name) = ns.resolve_parent(&root, &root, b"/etc/new", &c).unwrap();
    assert_eq!(parent.mount.check_writable(), Err(Errno::EROFS));
    assert_eq!(parent.inode.create(&name.unwrap(), 0o644, &c).err(), Some(Errno::EROFS));
    let pw = ns.resolve(&root, &root, b"/escape_abs", Follow::Yes, &c).unwrap();
    assert_eq!(pw.inode.open(O_WRONLY).err(), Some(Errno::EROFS));
    assert_eq!(parent.inode.unlink(b"passwd"), Err(Errno::EROFS));
    assert_eq!(std::fs::read(td.0.join("etc/passwd")).unwrap(), SANDBOX_PASSWD);
}

#[test]
fn pipe_blocking_and_interrupt() {
    let (r, w) = vfs::pipe::new_pair();
    let irq = Arc::new(Interrupt::default());
    let (r2, i2) = (r.clone(), irq.clone());
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        r2.read(&IoCtx { flags: 0, interrupt: &i2 }, &mut b, 0)
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.is_finished());
    irq.interrupt();
    assert_eq!(t.join().unwrap(), Err(Errno::ERESTARTSYS));
    irq.clear();
    // The same reader, woken by data this time.
    let (r2, i2) = (r.clone(), irq.clone());
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        r2.read(&IoCtx { flags: 0, interrupt: &i2 }, &mut b, 0).map(|n| b[..n].to_vec())
    });
    std::thread::sleep(Duration::from_millis(50));
    let wi = Interrupt::default();
    w.write(&ctx(&wi), b"data", 0).unwrap();
    assert_eq!(t.join().unwrap(), Ok(b"data".to_vec()));
    // The last writer going means EOF.
    w.release();
    let mut b = [0u8; 4];
    assert_eq!(r.read(&ctx(&wi), &mut b, 0), Ok(0));
}

/// Random walks over the sandbox: components from the tree, `..`, `.`,
/// empty ones, long names, and symlinks (in the tree and made on the
/// fly in /tmp with random targets). No walk panics, and every one that
/// succeeds ends at a canonical path inside the sandbox: no directory
/// listing shows a host-only name and no file reads as a host-only file.
#[test]
fn random_walks_stay_inside() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let sb = sandbox();
    // A file next to the rootfs (in the host's /tmp) that no walk may reach.
    let marker_name = format!("vfs-marker-{}", std::process::id());
    let marker = sb.td.0.parent().unwrap().join(&marker_name);
    std::fs::write(&marker, b"HOST-ONLY-MARKER\n").unwrap();
    let host_passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let rootfs_name = sb.td.0.file_name().unwrap().to_string_lossy().into_owned();
    let forbidden: Vec<String> = ["usr", "var", "boot", "home", "root", "sbin", "lib", &marker_name, &rootfs_name]
        .iter()
        .map(|s| s.to_string())
        .collect();

    let component = prop_oneof![
        5 => Just("..".to_string()),
        2 => Just(".".to_string()),
        2 => Just("".to_string()),
        5 => prop::sample::select(vec!["etc", "bin", "dir", "sub", "tmp", "dev", "up", "etc_link"])
            .prop_map(str::to_string),
        1 => prop::sample::select(vec![
            "passwd", "sh", "null", "escape_rel", "escape_abs", "deep_rel", "loop1", "selfloop", "via_proc",
            "missing", "r0", "r1", "r2",
        ])
        .prop_map(str::to_string),
        1 => Just("x".repeat(255)),
        1 => Just("y".repeat(256)),
        1 => Just(marker_name.clone()),
        1 => Just(rootfs_name.clone()),
    ];
    // Often a tail that names a file, so that walks end at files too.
    let tail = prop::option::of(prop::sample::select(vec![
        "etc/passwd",
        "escape_rel",
        "escape_abs",
        "dir/sub/deep_rel",
        "up/etc/passwd",
        "etc_link/passwd",
        "bin/sh",
        "tmp/r0",
        "tmp/r1",
        "r2",
        "via_proc",
        "dev/null",
    ]));
    let path = (any::<bool>(), prop::collection::vec(component, 0..10), tail, any::<bool>()).prop_map(
        |(abs, c, tail, slash)| {
            let mut p = if abs { "/".to_string() } else { String::new() };
            p.push_str(&c.join("/"));
            if let Some(t) = tail {
                if !p.is_empty() && !p.ends_with('/') {
                    p.push('/');
                }
                p.push_str(t);
            }
            if slash {
                p.push('/');
            }
            p
        },
    );
    // Each case: maybe a new symlink in /tmp, then a walk from the root or
    // from a directory deep inside.
    let case = (path.clone(), prop::option::of((0u8..3, path)), any::<bool>(), any::<bool>());

    let tmp = sb.resolve("/tmp").unwrap();
    let cwd_deep = sb.resolve("/dir/sub").unwrap();
    let mut runner = TestRunner::new(Config { cases: 2048, failure_persistence: None, ..Config::default() });
    let (ok_dirs, ok_files) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let result = runner.run(&case, |(p, link, from_deep, follow)| {
        if let Some((n, target)) = link {
            let name = format!("r{n}");
            let _ = tmp.inode.unlink(name.as_bytes());
            // An empty target is ENOENT, as on Linux.
            if let Err(e) = tmp.inode.symlink(name.as_bytes(), target.as_bytes(), &Creds::root()) {
                prop_assert!(target.is_empty(), "symlink {name} -> {target}: {e:?}");
            }
        }
        let cwd = if from_deep { &cwd_deep } else { &sb.root };
        let f = if follow { Follow::Yes } else { Follow::No };
        let Ok(d) = sb.ns.resolve(&sb.root, cwd, p.as_bytes(), f, &Creds::root()) else { return Ok(()) };
        let path = d.path();
        let shown = String::from_utf8_lossy(&path).into_owned();
        prop_assert!(path.starts_with(b"/"), "{p:?} -> {shown:?}");
        prop_assert!(
            path == b"/"
                || (!path.ends_with(b"/")
                    && path[1..].split(|&c| c == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..")),
            "{p:?} -> non-canonical {shown:?}"
        );
        if d.is_dir() {
            ok_dirs.set(ok_dirs.get() + 1);
            for e in d.inode.readdir().unwrap_or_default() {
                let name = String::from_utf8_lossy(&e.name).into_owned();
                prop_assert!(!forbidden.contains(&name), "ESCAPE: {p:?} -> {shown:?} lists the host's {name:?}");
            }
        } else if d.is_regular() {
            ok_files.set(ok_files.get() + 1);
            let data = read_all(&d);
            prop_assert!(data != b"HOST-ONLY-MARKER\n", "ESCAPE: {p:?} -> {shown:?} reads the marker");
            prop_assert!(data == SANDBOX_PASSWD || data != host_passwd, "ESCAPE: {p:?} reads the host's /etc/passwd");
        }
        Ok(())
    });
    let _ = std::fs::remove_file(&marker);
    if let Err(e) = result {
        panic!("{e}");
    }
    // The walks did reach places (the checks above were not vacuous).
    assert!(ok_dirs.get() > 100 && ok_files.get() > 15, "{} dirs, {} files", ok_dirs.get(), ok_files.get());
}
